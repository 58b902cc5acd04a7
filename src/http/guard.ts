/**
 * The request guard in front of fieldrelay's local HTTP servers (ingest and health), done the
 * way local daemons defend themselves against the browser on the same machine:
 *
 *   request ─► path (from the raw target: HTTP/1.0 without Host has no absolute URL)
 *           ─► Host: a loopback name or address, or absent — unless a token is configured
 *              (a DNS-rebinding page reaches 127.0.0.1 under its own name, e.g. evil.example)
 *           ─► Origin: refused (ingest), or only the server's own origin (health, for its page)
 *           ─► token: `Authorization: Bearer <token>` when one is configured
 *           ─► Content-Type of a body: application/json or application/x-ndjson only (a form or
 *              text/plain post needs no CORS preflight, so it must not be accepted)
 *           ─► the route
 *
 * Every refusal is a short JSON body {"error": "..."}. Pure apart from building the Response.
 */
import { isLoopback } from "../config/index.ts";
import { isAuthorized } from "./auth.ts";

/** A short JSON error body (never the runtime's HTML error page). */
export function jsonError(status: number, error: string, headers: Record<string, string> = {}): Response {
  return new Response(`${JSON.stringify({ error })}\n`, {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
  });
}

/** The path of a request target: "/v1/readings?x" → "/v1/readings"; works for relative targets. */
export function requestPath(target: string): string {
  if (target.startsWith("/")) {
    const end = target.search(/[?#]/);
    return end < 0 ? target : target.slice(0, end);
  }
  try {
    return new URL(target).pathname;
  } catch {
    return "";
  }
}

/** The host part of a Host header value ("[::1]:9107" → "::1"), or undefined when unparsable. */
export function hostOf(header: string): string | undefined {
  try {
    const host = new URL(`http://${header}`).hostname;
    return host.startsWith("[") ? host.slice(1, -1) : host;
  } catch {
    return undefined;
  }
}

export interface GuardOptions {
  /** The bearer token this server requires; without one only loopback Hosts are served. */
  token: string | undefined;
  /**
   * "none": any Origin is refused (a JSON API). "same": only this server's own origin. "any": the
   * route defends itself (the status page: its sign-in needs the token, its cookie is SameSite=Strict,
   * and its own form posts carry `Origin: null` under its no-referrer policy).
   */
  origin: "none" | "same" | "any";
  /** Media types a request body may have (undefined: the server takes no bodies). */
  bodyTypes?: readonly string[];
  /** Which config key sets the token, for the messages. */
  tokenKey: string;
  /** false: the route authenticates itself (the status page's sign-in); Host and Origin still apply. */
  bearer?: boolean;
}

/** Check a request; a Response is the refusal, undefined means go on to the route. */
export function guardRequest(request: Request, options: GuardOptions): Response | undefined {
  const host = request.headers.get("host");
  if (!options.token && host !== null) {
    const name = hostOf(host);
    if (name === undefined || !isLoopback(name)) {
      return jsonError(
        403,
        `Host "${host.slice(0, 100)}" is not a loopback name or address; without ${options.tokenKey} this server only answers requests addressed to localhost, 127.0.0.1 or [::1]`,
      );
    }
  }
  const origin = request.headers.get("origin");
  if (origin !== null && options.origin !== "any") {
    const own = host !== null && (origin === `http://${host}` || origin === `https://${host}`);
    if (options.origin === "none" || !own) {
      return jsonError(403, `requests from web pages (Origin: ${origin.slice(0, 100)}) are refused`);
    }
  }
  if (
    options.token &&
    options.bearer !== false &&
    !isAuthorized(request.headers.get("authorization"), options.token)
  ) {
    return jsonError(401, `missing or wrong token: send "Authorization: Bearer <${options.tokenKey}>"`, {
      "www-authenticate": 'Bearer realm="fieldrelay"',
    });
  }
  if (options.bodyTypes && request.method !== "GET" && request.method !== "HEAD") {
    const type = (request.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (!options.bodyTypes.includes(type)) {
      return jsonError(
        415,
        `Content-Type ${type === "" ? "missing" : `"${type.slice(0, 100)}"`}: send ${options.bodyTypes.join(" or ")}`,
      );
    }
  }
  return undefined;
}
