/**
 * Page sessions: how a browser proves it knows health.token without the token ever being in a
 * URL (URLs end up in logs, history and proxies). The login form POSTs the token in its body;
 * on a match the server sets a cookie
 *
 *   fr_session=<issued>.<mac>      issued: CLOCK_MONOTONIC seconds at login
 *                                  mac:    HMAC-SHA256(secret, issued), base64url
 *
 * with a secret drawn at start, so a session is worth nothing after a restart or after ttl, and
 * the token itself is never stored in the browser. HttpOnly (scripts cannot read it) and
 * SameSite=Strict (other sites cannot make the browser send it). No server-side table: nothing to
 * grow, nothing to clean up.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export const SESSION_COOKIE = "fr_session";
/** Sessions last 12 hours of monotonic time. */
export const SESSION_TTL_S = 12 * 3600;

export interface Sessions {
  /** A new session's cookie value. */
  issue(): string;
  /** True when the Cookie header carries a valid, unexpired session. */
  valid(cookieHeader: string | null | undefined): boolean;
  /** The Set-Cookie header value for a new session, or one that clears it. */
  setCookie(value: string | undefined): string;
}

/** The value of one cookie in a Cookie header, or undefined. */
export function cookieValue(header: string | null | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function createSessions(
  nowMonoMs: () => number,
  secret = randomBytes(32),
  ttlS = SESSION_TTL_S,
): Sessions {
  const mac = (issued: string) => createHmac("sha256", secret).update(issued).digest("base64url");
  return {
    issue() {
      const issued = String(Math.floor(nowMonoMs() / 1000));
      return `${issued}.${mac(issued)}`;
    },
    valid(cookieHeader) {
      const value = cookieValue(cookieHeader, SESSION_COOKIE);
      const m = value === undefined ? null : /^(\d{1,15})\.([A-Za-z0-9_-]{43})$/.exec(value);
      if (!m) return false;
      const expected = Buffer.from(mac(m[1]!));
      const given = Buffer.from(m[2]!);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
      const age = nowMonoMs() / 1000 - Number(m[1]);
      return age >= -1 && age < ttlS;
    },
    setCookie(value) {
      const base = `${SESSION_COOKIE}=${value ?? ""}; Path=/; HttpOnly; SameSite=Strict`;
      return value === undefined ? `${base}; Max-Age=0` : `${base}; Max-Age=${ttlS}`;
    },
  };
}
