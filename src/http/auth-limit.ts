/**
 * AuthLimiter slows down guessing a local server's token (health.token, ingest.token): on the
 * health listener the status page's POST /login and every `Authorization: Bearer` on /health,
 * /metrics and /page.json count as one guess; on the ingest API every Bearer does. Per client:
 *
 *   free ──wrong token (n < FREE)──► free(n)
 *   free(n) ──wrong token, n = FREE──► locked(until = now + BASE)
 *   locked ──any token before `until`──► 429 + Retry-After (the token is not compared; nothing counted)
 *   locked ──`until` passed, wrong token (n > FREE)──► locked(until = now + BASE·2^(n−FREE)), ≤ MAX
 *   any ──right token──► forgotten
 *   any ──no wrong token for FORGET──► forgotten
 *
 * With the defaults (5 free, 1 s doubling to 15 min, forgotten after an hour) a client gets about
 * 15 guesses in its first hour and 4 an hour after that; a 16-character token is out of reach.
 *
 * A client is an address, except that every loopback address is one client (a local process can
 * bind any of 127.0.0.0/8) and an IPv6 client is its /64 (one host usually owns a whole /64).
 * Session cookies never count: they are HMACs nobody can guess, and a stale one after a restart
 * must not lock its owner out; a signed-in browser keeps working while its address waits.
 * Bounded: at most maxClients entries, the least recently failed one dropped first.
 * Pure logic: time is injected (CLOCK_MONOTONIC ms).
 */
import { isIPv4, isIPv6 } from "node:net";
import { isLoopback } from "../config/index.ts";

export interface AuthLimitOptions {
  now: () => number;
  /** Wrong tokens allowed before the first wait. */
  freeFailures?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** A client with no wrong token for this long starts over. */
  forgetMs?: number;
  maxClients?: number;
}

export type AuthCheck = { allowed: true } | { allowed: false; retryAfterS: number };

interface Client {
  failures: number;
  lastFailureMs: number;
  lockedUntilMs: number;
}

/** The key a request's remote address is counted under. */
export function clientKey(address: string | undefined): string {
  if (!address) return "unknown";
  const a = address.toLowerCase().replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1");
  if (isLoopback(a)) return "loopback";
  if (isIPv4(a)) return a;
  if (isIPv6(a)) return `${expandIPv6(a).slice(0, 4).join(":")}::/64`;
  return a;
}

/** The eight 16-bit groups of an IPv6 address, as hex without leading zeros. */
function expandIPv6(a: string): string[] {
  const [head = "", tail] = a.split("::");
  const part = (s: string) => (s === "" ? [] : s.split(":"));
  const h = part(head);
  const t = tail === undefined ? [] : part(tail);
  const groups = [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill("0"), ...t];
  return groups.map((g) => Number.parseInt(g, 16).toString(16));
}

export class AuthLimiter {
  private readonly clients = new Map<string, Client>();
  private readonly free: number;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly forgetMs: number;
  private readonly maxClients: number;

  constructor(private readonly o: AuthLimitOptions) {
    this.free = o.freeFailures ?? 5;
    this.baseMs = o.baseDelayMs ?? 1000;
    this.maxMs = o.maxDelayMs ?? 15 * 60_000;
    this.forgetMs = o.forgetMs ?? 3_600_000;
    this.maxClients = o.maxClients ?? 4096;
  }

  /** May this client try a token now? */
  check(address: string | undefined): AuthCheck {
    const c = this.current(clientKey(address));
    const now = this.o.now();
    if (!c || now >= c.lockedUntilMs) return { allowed: true };
    return { allowed: false, retryAfterS: Math.max(1, Math.ceil((c.lockedUntilMs - now) / 1000)) };
  }

  /** Count a wrong token; returns the wait it starts (ms), or 0 while the client is still free. */
  failure(address: string | undefined): number {
    const key = clientKey(address);
    const now = this.o.now();
    const c = this.current(key) ?? { failures: 0, lastFailureMs: now, lockedUntilMs: 0 };
    c.failures++;
    c.lastFailureMs = now;
    const over = c.failures - this.free;
    const waitMs = over < 0 ? 0 : Math.min(this.maxMs, this.baseMs * 2 ** Math.min(over, 30));
    c.lockedUntilMs = now + waitMs;
    // Re-insert: the Map's order is then "least recently failed first", the eviction order.
    this.clients.delete(key);
    this.clients.set(key, c);
    while (this.clients.size > this.maxClients) {
      const oldest = this.clients.keys().next().value as string;
      this.clients.delete(oldest);
    }
    return waitMs;
  }

  /** A right token: the client starts over. */
  success(address: string | undefined): void {
    this.clients.delete(clientKey(address));
  }

  /** Clients being counted (for tests and the bound). */
  get size(): number {
    return this.clients.size;
  }

  private current(key: string): Client | undefined {
    const c = this.clients.get(key);
    if (c && this.o.now() - c.lastFailureMs >= this.forgetMs && this.o.now() >= c.lockedUntilMs) {
      this.clients.delete(key);
      return undefined;
    }
    return c;
  }
}
