/**
 * The health server: GET /health (JSON verdict; 503 only when fieldrelay cannot capture) and
 * GET /metrics (Prometheus text), and the status page (GET /, /page.json, POST /login: page/routes.ts)
 * on health.listen (default 127.0.0.1:9108). When health.token
 * is set every request must carry `Authorization: Bearer <token>`; off loopback the token is
 * mandatory and the server refuses to start without one.
 */

import { libc } from "../hal/index.ts";
import type { Logger } from "../log/index.ts";
import { assertListenAllowed, HealthConfigError, isAuthorized } from "./auth.ts";
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
  const page = createPageRoutes({
    ...options.page,
    token,
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

  let server: ReturnType<typeof Bun.serve>;
  try {
    server = serveOn(listen);
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
  function serveOn(listen: { host: string; port: number }) {
    return Bun.serve({
      hostname: listen.host,
      port: listen.port,
      async fetch(req) {
        const url = new URL(req.url);
        if (page.owns(url.pathname))
          return page.handle(req, url, server.requestIP(req)?.address).catch((error) => {
            log.error({ err: error, path: url.pathname }, "status page failed");
            return Response.json({ error: "internal error" }, { status: 500 });
          });
        if (!isAuthorized(req.headers.get("authorization"), token)) {
          log.warn(
            { path: url.pathname, remote: server.requestIP(req)?.address },
            "health request without a valid token",
          );
          return new Response("unauthorized\n", {
            status: 401,
            headers: { "www-authenticate": 'Bearer realm="fieldrelay"' },
          });
        }
        if (url.pathname !== "/health" && url.pathname !== "/metrics")
          return new Response("not found: try /health, /metrics or / (status page)\n", { status: 404 });
        if (req.method !== "GET" && req.method !== "HEAD")
          return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
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
          return new Response("internal error\n", { status: 500 });
        }
      },
    });
  }
  log.info(
    { host: listen.host, port: server.port, token: token ? "set" : "none" },
    "health endpoint listening",
  );
  return {
    port: server.port ?? listen.port,
    async stop() {
      lag.stop();
      page.stop();
      await server.stop(true);
    },
  };
}
