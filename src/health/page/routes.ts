/**
 * The status page's routes on the health listener:
 *
 *   GET  /            the page (one self-contained HTML document), or the sign-in form
 *   GET  /page.json   the page's data; ?since=<t> (a row time it already has) sends newer rows only
 *   POST /login       form body token=<health.token> → session cookie, 303 to /
 *   POST /logout      clears the cookie
 *
 * Same rule as /health and /metrics: without health.token (loopback only) everything is open;
 * with it, a request needs `Authorization: Bearer <token>` or a session cookie from /login
 * (session.ts). The token never travels in a URL. Every token tried — the form's or a Bearer
 * header's — counts toward the listener's per-client limit (src/http/auth-limit.ts): 429 + Retry-After.
 *
 * The page's history (history.ts) is recorded every stepMs whether or not anyone watches — that
 * is what makes the last hour appear at once — and costs one status snapshot per step and a
 * bounded ring of numbers. Rendering, JSON and polling only happen while a page is open.
 */

import type { AuthLimiter } from "../../http/index.ts";
import type { Logger } from "../../log/index.ts";
import { isAuthorized } from "../auth.ts";
import type { HealthBody } from "../server.ts";
import type { Vitals } from "../vitals.ts";
import { StatusHistory } from "./history.ts";
import { CSP, loginHtml, PAGE_HTML } from "./layout.ts";
import { historyRow, type PageStatus, pageData, RATE_WINDOW_S, zeroWhenMissing } from "./model.ts";
import { createSessions, SESSION_COOKIE } from "./session.ts";

/** One consistent reading of everything the page shows. */
export interface PageSnapshot {
  status: PageStatus;
  vitals: Vitals;
  health: HealthBody;
  nowMonoMs: number;
}

export interface PageRoutesOptions {
  token: string | undefined;
  snapshot: () => PageSnapshot;
  /** The status alone, for the history rows (no vitals or health verdict needed). */
  status: () => PageStatus;
  nowMonoMs: () => number;
  deviceId?: string | undefined;
  log: Logger;
  /** Counts wrong tokens per client, shared with /health and /metrics (src/http/auth-limit.ts). */
  limiter?: AuthLimiter;
  /** History row interval (5 s) and rows kept (720: one hour). */
  stepMs?: number;
  capacity?: number;
  /** Runs fn every intervalMs until the returned function is called (injected by tests). */
  every?: (fn: () => void, intervalMs: number) => () => void;
}

export interface PageRoutes {
  owns(pathname: string): boolean;
  handle(req: Request, url: URL, remote: string | undefined): Promise<Response>;
  /** Record a history row now (the timer does this every stepMs). */
  record(): void;
  readonly history: StatusHistory;
  stop(): void;
}

export const PAGE_PATHS = new Set(["/", "/page.json", "/login", "/logout"]);
/** Columns: rows, captured, delivered, dead, 10 priorities, and sensor fields up to the rest. */
const MAX_COLUMNS = 64;
const MAX_LOGIN_BODY = 4096;

const defaultEvery = (fn: () => void, intervalMs: number) => {
  const timer = setInterval(fn, intervalMs);
  timer.unref?.();
  return () => clearInterval(timer);
};

const HTML_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": CSP,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

const JSON_HEADERS = { "content-type": "application/json", "cache-control": "no-store" };
/** Below this a gzip header and trailer cost more than they save. */
const GZIP_MIN_BYTES = 512;
const acceptsGzip = (req: Request) => /\bgzip\b/.test(req.headers.get("accept-encoding") ?? "");

/** The page compressed once (≈31 KB instead of ≈79 KB): it often crosses an SSH tunnel or a phone link. */
const PAGE_GZIP = Bun.gzipSync(PAGE_HTML);

const jsonError = (status: number, error: string, hint: string, headers: Record<string, string> = {}) =>
  Response.json({ error, hint }, { status, headers: { "cache-control": "no-store", ...headers } });

export function createPageRoutes(o: PageRoutesOptions): PageRoutes {
  const stepMs = o.stepMs ?? 5000;
  const history = new StatusHistory({
    capacity: o.capacity ?? 720,
    maxColumns: MAX_COLUMNS,
    zeroWhenMissing,
  });
  const sessions = createSessions(o.nowMonoMs);
  let warnedColumns = false;

  const record = () => {
    try {
      history.record(o.nowMonoMs(), historyRow(o.status()));
      if (history.ignoredKeys > 0 && !warnedColumns) {
        warnedColumns = true;
        o.log.warn(
          { columns: MAX_COLUMNS },
          "status page history is full: further sensor fields are shown live but without a sparkline",
        );
      }
    } catch (error) {
      o.log.warn({ err: error }, "status page history row failed");
    }
  };
  record();
  const stopTimer = (o.every ?? defaultEvery)(record, stepMs);

  /** A locked-out client's answer: the token it sent is not even compared. */
  const tooMany = (remote: string | undefined): Response | undefined => {
    const c = o.limiter?.check(remote);
    if (!c || c.allowed) return undefined;
    return jsonError(
      429,
      `too many wrong tokens from this address: try again in ${c.retryAfterS} s`,
      "use this device's health.token (FIELDRELAY_HEALTH_TOKEN); every wrong one doubles the wait",
      { "retry-after": String(c.retryAfterS) },
    );
  };

  /** Compare a token someone sent, counting it toward the client's limit. */
  const tokenMatches = (authorization: string, remote: string | undefined): boolean => {
    if (isAuthorized(authorization, o.token)) {
      o.limiter?.success(remote);
      return true;
    }
    const waitMs = o.limiter?.failure(remote) ?? 0;
    if (waitMs > 0)
      o.log.warn(
        { remote, wait_s: Math.ceil(waitMs / 1000) },
        "too many wrong health tokens; client must wait",
      );
    return false;
  };

  /** undefined: go on; otherwise the refusal. */
  const authorize = (req: Request, path: string, remote: string | undefined): Response | undefined => {
    if (!o.token || sessions.valid(req.headers.get("cookie"))) return undefined;
    const authorization = req.headers.get("authorization");
    if (authorization !== null) {
      const refused = tooMany(remote);
      if (refused) return refused;
      if (tokenMatches(authorization, remote)) return undefined;
    }
    if (path === "/") return html(loginHtml(), 401, { "www-authenticate": 'Bearer realm="fieldrelay"' });
    return jsonError(
      401,
      "unauthorized",
      `sign in at / (cookie ${SESSION_COOKIE}) or send Authorization: Bearer`,
      {
        "www-authenticate": 'Bearer realm="fieldrelay"',
      },
    );
  };

  const html = (body: string, status = 200, extra: Record<string, string> = {}) =>
    new Response(body, { status, headers: { ...HTML_HEADERS, ...extra } });

  async function login(req: Request, remote: string | undefined): Promise<Response> {
    if (!o.token) return new Response(null, { status: 303, headers: { location: "/" } });
    const type = req.headers.get("content-type") ?? "";
    if (!type.toLowerCase().startsWith("application/x-www-form-urlencoded"))
      return html(loginHtml("Send the form from this page (application/x-www-form-urlencoded)."), 415);
    const length = Number(req.headers.get("content-length"));
    if (!Number.isFinite(length) || length > MAX_LOGIN_BODY)
      return html(loginHtml("The sign-in form is too large."), 413);
    const refused = tooMany(remote);
    if (refused) return refused;
    const token = new URLSearchParams(await req.text()).get("token") ?? "";
    if (!tokenMatches(`Bearer ${token}`, remote)) {
      o.log.warn({ remote }, "status page sign-in with a wrong token");
      return html(loginHtml("That is not this device's health token."), 401);
    }
    o.log.info({ remote }, "status page signed in");
    return new Response(null, {
      status: 303,
      headers: {
        location: "/",
        "set-cookie": sessions.setCookie(sessions.issue()),
        "cache-control": "no-store",
      },
    });
  }

  function data(req: Request, url: URL): Response {
    const sinceParam = url.searchParams.get("since");
    let sinceMs: number | undefined;
    if (sinceParam !== null) {
      sinceMs = Math.round(Number(sinceParam) * 1000);
      if (!Number.isFinite(sinceMs))
        return jsonError(400, "bad since", "since is a row time (seconds) from an earlier /page.json");
    }
    const snap = o.snapshot();
    const windowStart = snap.nowMonoMs - RATE_WINDOW_S * 1000;
    const base =
      history.at(windowStart, ["captured", "delivered"]) ??
      (history.oldestMonoMs === undefined
        ? undefined
        : history.at(history.oldestMonoMs, ["captured", "delivered"]));
    const body = pageData({
      status: snap.status,
      vitals: snap.vitals,
      health: snap.health,
      deviceId: o.deviceId,
      nowMonoMs: snap.nowMonoMs,
      rssBytes: process.memoryUsage.rss(),
      stepS: stepMs / 1000,
      history: history.slice(sinceMs),
      ...(sinceMs === undefined ? {} : { sinceMonoMs: sinceMs }),
      rateBase: base && {
        t: base.t,
        captured: base.values.captured!,
        delivered: base.values.delivered!,
      },
    });
    const json = JSON.stringify(body);
    // Compressed when the browser takes it: a poll's answer (≈2.8 KB every 2 s) is most of the
    // bytes an open page moves, and it shrinks about 4× (bench "status page on the wire").
    if (json.length >= GZIP_MIN_BYTES && acceptsGzip(req))
      return new Response(Bun.gzipSync(json), {
        headers: { ...JSON_HEADERS, "content-encoding": "gzip", vary: "accept-encoding" },
      });
    return new Response(json, { headers: { ...JSON_HEADERS, vary: "accept-encoding" } });
  }

  return {
    history,
    record,
    owns: (pathname) => PAGE_PATHS.has(pathname),
    async handle(req, url, remote) {
      const path = url.pathname;
      const post = path === "/login" || path === "/logout";
      const allowed = post ? ["POST"] : ["GET", "HEAD"];
      if (!allowed.includes(req.method))
        return jsonError(405, "method not allowed", `${path} takes ${allowed.join(" or ")}`, {
          allow: allowed.join(", "),
        });
      if (path === "/login") return login(req, remote);
      if (path === "/logout")
        return new Response(null, {
          status: 303,
          headers: { location: "/", "set-cookie": sessions.setCookie(undefined) },
        });
      const refusal = authorize(req, path, remote);
      if (refusal) return refusal;
      if (path === "/") {
        if (acceptsGzip(req))
          return new Response(PAGE_GZIP, {
            headers: { ...HTML_HEADERS, "content-encoding": "gzip", vary: "accept-encoding" },
          });
        return html(PAGE_HTML, 200, { vary: "accept-encoding" });
      }
      return data(req, url);
    },
    stop: stopTimer,
  };
}
