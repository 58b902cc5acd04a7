/**
 * TokenBucket limits the publish rate (mqtt.max_rate messages per second) while allowing a burst
 * of up to one second's worth. State is plain data and every method takes the monotonic time, so
 * it is tested without clocks.
 */
export interface TokenBucket {
  /** Tokens per second; 0 means unlimited. */
  readonly ratePerS: number;
  /** Most tokens the bucket holds (the burst). */
  readonly capacity: number;
  tokens: number;
  lastMs: number;
}

export function createTokenBucket(ratePerS: number, nowMs: number): TokenBucket {
  const capacity = ratePerS > 0 ? Math.max(1, ratePerS) : Number.POSITIVE_INFINITY;
  return { ratePerS, capacity, tokens: capacity, lastMs: nowMs };
}

function refill(bucket: TokenBucket, nowMs: number): void {
  if (bucket.ratePerS <= 0) return;
  const elapsedMs = Math.max(0, nowMs - bucket.lastMs);
  bucket.tokens = Math.min(bucket.capacity, bucket.tokens + (elapsedMs * bucket.ratePerS) / 1000);
  bucket.lastMs = nowMs;
}

/** Whole tokens available now, without taking them (Infinity when unlimited). */
export function availableTokens(bucket: TokenBucket, nowMs: number): number {
  if (bucket.ratePerS <= 0) return Number.POSITIVE_INFINITY;
  refill(bucket, nowMs);
  return Math.floor(bucket.tokens);
}

/** Take up to `wanted` whole tokens; returns how many were granted (all of them when unlimited). */
export function takeTokens(bucket: TokenBucket, wanted: number, nowMs: number): number {
  if (bucket.ratePerS <= 0) return wanted;
  refill(bucket, nowMs);
  const granted = Math.min(wanted, Math.floor(bucket.tokens));
  bucket.tokens -= granted;
  return granted;
}

/** Milliseconds until at least one whole token is available (0 when one is available now). */
export function msUntilToken(bucket: TokenBucket, nowMs: number): number {
  if (bucket.ratePerS <= 0) return 0;
  refill(bucket, nowMs);
  if (bucket.tokens >= 1) return 0;
  return Math.ceil(((1 - bucket.tokens) * 1000) / bucket.ratePerS);
}

/**
 * Spend `amount` tokens even beyond what the bucket holds, leaving it in debt: a message bigger
 * than one second's worth of bytes still goes, and the next waits until the debt is paid back.
 */
export function spendTokens(bucket: TokenBucket, amount: number, nowMs: number): void {
  if (bucket.ratePerS <= 0) return;
  refill(bucket, nowMs);
  bucket.tokens -= amount;
}
