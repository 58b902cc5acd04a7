/**
 * Bearer tokens for the local HTTP servers. The token is compared in constant time: both sides
 * are hashed first, so neither the content nor the length leaks through timing.
 */
import { createHash, timingSafeEqual } from "node:crypto";

const digest = (s: string) => createHash("sha256").update(s).digest();

/** isAuthorized checks an Authorization header against the token. Without a token every request passes. */
export function isAuthorized(authorization: string | null | undefined, token: string | undefined): boolean {
  if (!token) return true;
  const m = /^Bearer\s+(.+)$/i.exec(authorization?.trim() ?? "");
  const given = m?.[1] ?? "";
  return timingSafeEqual(digest(given), digest(token)) && given.length > 0;
}
