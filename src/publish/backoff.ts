/**
 * Reconnect schedule: exponential backoff with full jitter (AWS architecture blog, "Exponential
 * Backoff And Jitter"). Full jitter spreads a fleet that lost its broker at the same instant over
 * the whole window instead of having every device retry in lock-step.
 */

/**
 * backoffDelayS is the wait before reconnect attempt number `attempt` (0 for the first retry):
 * random() * min(maxS, minS * 2^attempt). random() returns [0, 1), like Math.random.
 */
export function backoffDelayS(attempt: number, minS: number, maxS: number, random: () => number): number {
  if (!Number.isInteger(attempt) || attempt < 0)
    throw new RangeError(`attempt must be an integer >= 0, got ${attempt}`);
  if (!(minS > 0) || !(maxS >= minS))
    throw new RangeError(`need 0 < minS <= maxS, got minS=${minS} maxS=${maxS}`);
  // 2^attempt overflows to Infinity past ~1024; min() keeps it at the cap either way.
  const ceilingS = Math.min(maxS, minS * 2 ** attempt);
  const r = Math.min(Math.max(random(), 0), 1);
  return r * ceilingS;
}

/** A delay in seconds as logged (retryInS): milliseconds are precision enough to read. */
export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
