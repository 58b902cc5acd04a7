/**
 * The health server: GET /health (JSON verdict; 503 only when fieldrelay cannot capture) and
 * GET /metrics (Prometheus text), and the status page (GET /, /page.json, POST /login: page/routes.ts)
 * on health.listen (default 127.0.0.1:9108). When health.token
 * is set every request must carry `Authorization: Bearer <token>`; off loopback the token is
 * mandatory and the server refuses to start without one. Wrong tokens are counted per client
 * (src/http/auth-limit.ts): after a few, the client gets 429 + Retry-After, waiting twice as long each time.
 */

import { libc } from "../hal/index.ts";
import {
  AuthLimiter,
  guardRequest,
  type Handlers,
  jsonError,
  type Listener,
  type ListenerPool,
  requestPath,
  serveOnce,
} from "../http/index.ts";
import type { Logger } from "../log/index.ts";
import { assertListenAllowed, HealthConfigError } from "./auth.ts";
import { evaluateHealth, type HealthReport, type HealthThresholds } from "./evaluate.ts";
import { startLoopLag } from "./loop-lag.ts";
import { createMetrics } from "./metrics.ts";
import { createPageRoutes, type PageRoutesOptions } from "./page/routes.ts";
import type { HealthStatus } from "./snapshot.ts";
import type { Vitals, VitalsReader } from "./vitals.ts";

export interface HealthServerOptions {
  listen: { host: string; port: number };
  token?: string | undefined;
  status: () => HealthStatus;
  vitals: VitalsReader;
  version: string;
  log: Logger;
  thresholds: HealthThresholds;
  /** Keeps the listener open across a config reload (run's SIGHUP); without it stop() closes it. */
  listeners?: ListenerPool | undefined;
  /** CLOCK_MONOTONIC in ms; injectable for tests. */
  nowMonoMs?: () => number;
  /** device.id, shown on the status page. */
  deviceId?: string;
  /** Status page history: row interval, rows kept, timer (tests). */
  page?: Pick<PageRoutesOptions, "stepMs" | "capacity" | "every">;
}

export interface HealthServer {
  port: number;
  stop(): Promise<void>;
}

/** The /health body. */
export interface HealthBody extends HealthReport {
  version: string;
  uptime_s: number;
}

export const monoNowMs = () => Number(libc.clockGettimeNs(libc.CLOCK_MONOTONIC) / 1_000_000n);

/** healthBody is the /health response (and the `status` command's reply) for one snapshot. */
export function healthBody(
  status: HealthStatus,
  vitals: Vitals,
  nowMonoMs: number,
  thresholds: HealthThresholds,
  version: string,
): HealthBody {
  const report = evaluateHealth(status, vitals, nowMonoMs, thresholds);
  return { ...report, version, uptime_s: Math.max(0, Math.round((nowMonoMs - status.startedMonoMs) / 1000)) };
}

export function startHealthServer(options: HealthServerOptions): HealthServer {
  const { listen, token, status, vitals, version, log, thresholds } = options;
  const now = options.nowMonoMs ?? monoNowMs;
  assertListenAllowed(listen.host, token);
  const metrics = createMetrics(version);
  const lag = startLoopLag();
  const limiter = new AuthLimiter({ now });
  const page = createPageRoutes({
    ...options.page,
    token,
    limiter,
    status,
    nowMonoMs: now,
    deviceId: options.deviceId,
    log,
    snapshot() {
      const snapshot = status();
      const nowMonoMs = now();
      const v = vitals.read();
      return {
        status: snapshot,
        vitals: v,
        health: healthBody(snapshot, v, nowMonoMs, thresholds, version),
        nowMonoMs,
      };
    },
  });

  let listener: Listener;
  try {
    // #12: from the pool the listener outlives a config reload (requests wait, none is refused).
    listener = options.listeners
      ? options.listeners.serve("health", listen, handlers())
      : serveOnce(listen, handlers());
  } catch (error) {
    lag.stop();
    page.stop();
    throw new HealthConfigError(
      `cannot listen on ${listen.host}:${listen.port}: ${(error as Error).message}`,
      {
        hint: "another process holds the port (is fieldrelay already running?) or the address is not local; change health.listen",
        context: { key: "health.listen", code: (error as { code?: string }).code },
        cause: error,
      },
    );
  }
  function handlers(): Handlers {
    return {
      async fetch(req, server) {
        // #12: the guard (Host, Origin, token) comes before every route; errors are short JSON.
        const url = { pathname: requestPath(req.url) };
        if (page.owns(url.pathname)) {
          // The page signs in with its own form and cookie: the guard checks the Host only.
          const refused = guardRequest(req, {
            token,
            origin: "any",
            tokenKey: "health.token",
            bearer: false,
          });
          if (refused) return refused;
          return page
            .handle(req, new URL(req.url, "http://localhost"), server.requestIP(req)?.address)
            .catch((error) => {
              log.error({ err: error, path: url.pathname }, "status page failed");
              return jsonError(500, "internal error");
            });
        }
        const remote = server.requestIP(req)?.address;
        const tries = token !== undefined && req.headers.has("authorization");
        const check = tries ? limiter.check(remote) : { allowed: true as const };
        if (!check.allowed)
          return jsonError(
            429,
            `too many wrong tokens from this address: try again in ${check.retryAfterS} s with health.token (FIELDRELAY_HEALTH_TOKEN)`,
            { "retry-after": String(check.retryAfterS) },
          );
        const refusal = guardRequest(req, { token, origin: "same", tokenKey: "health.token" });
        if (refusal) {
          if (refusal.status === 401) {
            const waitMs = tries ? limiter.failure(remote) : 0;
            log.warn(
              {
                path: url.pathname.slice(0, 100),
                remote,
                ...(waitMs > 0 && { wait_s: Math.ceil(waitMs / 1000) }),
              },
              "health request without a valid token",
            );
          }
          return refusal;
        }
        if (tries) limiter.success(remote);
        if (url.pathname !== "/health" && url.pathname !== "/metrics")
          return jsonError(404, "not found: try GET /health, GET /metrics or / (status page)");
        if (req.method !== "GET" && req.method !== "HEAD")
          return jsonError(405, "method not allowed: use GET", { allow: "GET, HEAD" });
        try {
          const snapshot = status();
          const nowMs = now();
          const v = vitals.read();
          const body = healthBody(snapshot, v, nowMs, thresholds, version);
          if (url.pathname === "/health")
            return Response.json(body, { status: body.status === "unhealthy" ? 503 : 200 });
          const text = await metrics.render({
            status: snapshot,
            vitals: v,
            health: body,
            lag: lag.take(),
            nowMonoMs: nowMs,
            rssBytes: process.memoryUsage.rss(),
          });
          return new Response(text, { headers: { "content-type": metrics.registry.contentType } });
        } catch (error) {
          log.error({ err: error, path: url.pathname }, "health endpoint failed");
          return jsonError(500, "internal error");
        }
      },
      error(error) {
        log.error({ err: error }, "health request failed");
        return jsonError(500, "internal error");
      },
    };
  }
  log.info(
    { host: listen.host, port: listener.port, auth: token ? "bearer token" : "none (loopback)" },
    "health endpoint listening",
  );
  return {
    port: listener.port,
    async stop() {
      lag.stop();
      page.stop();
      await listener.release();
    },
  };
}
