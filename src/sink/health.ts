/**
 * The sink's /health and /metrics, with the edge's conventions (src/health): JSON verdict on
 * /health (503 when the sink cannot land readings: database unreachable or broker disconnected),
 * Prometheus text on /metrics, a bearer token required off loopback. Metric names start with
 * fieldrelay_sink_.
 */
import { Counter, Gauge, Registry, Summary } from "prom-client";
import type { Listen } from "../config/index.ts";
import { assertListenAllowed } from "../health/index.ts";
import { AuthLimiter, isAuthorized, jsonError } from "../http/index.ts";
import type { Logger } from "../log/index.ts";
import type { ConsumerStats } from "./consumer.ts";
import type { WriterStats } from "./writer.ts";

export interface SinkStatus {
  consumer: ConsumerStats;
  writer: WriterStats;
  startedMs: number;
  nowMs: number;
  readingsPerSecond: number;
}

export type SinkHealth = "healthy" | "degraded" | "unhealthy";

export interface SinkHealthBody {
  status: SinkHealth;
  version: string;
  uptime_s: number;
  broker_connected: boolean;
  database_up: boolean;
  pending_messages: number;
  oldest_pending_age_s: number | null;
  readings_per_second: number;
  problems: string[];
}

/** Pure: the verdict for one snapshot. Lag over lagDegradedS is degraded (slow, but landing). */
export function sinkHealth(s: SinkStatus, version: string, lagDegradedS = 30): SinkHealthBody {
  const problems: string[] = [];
  const lagS = s.writer.oldestPendingMs === undefined ? null : (s.nowMs - s.writer.oldestPendingMs) / 1000;
  if (!s.writer.databaseUp) problems.push("database unreachable: nothing is acknowledged until it is back");
  if (!s.consumer.connected) problems.push("not connected to the broker");
  let status: SinkHealth = problems.length > 0 ? "unhealthy" : "healthy";
  if (status === "healthy" && lagS !== null && lagS > lagDegradedS) {
    status = "degraded";
    problems.push(`oldest pending message waits ${lagS.toFixed(1)} s`);
  }
  return {
    status,
    version,
    uptime_s: Math.round((s.nowMs - s.startedMs) / 1000),
    broker_connected: s.consumer.connected,
    database_up: s.writer.databaseUp,
    pending_messages: s.writer.pending,
    oldest_pending_age_s: lagS,
    readings_per_second: s.readingsPerSecond,
    problems,
  };
}

export interface SinkMetrics {
  registry: Registry;
  observeCommit(latencyMs: number[]): void;
  render(status: SinkStatus, health: SinkHealthBody): Promise<string>;
}

const P = "fieldrelay_sink_";

export function createSinkMetrics(version: string): SinkMetrics {
  const registry = new Registry();
  let snap: { s: SinkStatus; h: SinkHealthBody } | undefined;
  const cur = () => {
    if (!snap) throw new Error("metrics collected outside render()");
    return snap;
  };
  const total = (
    name: string,
    help: string,
    value: () => number | Array<[Record<string, string>, number]>,
    labelNames: string[] = [],
  ) =>
    new Counter({
      name: P + name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        const v = value();
        if (typeof v === "number") this.inc(v);
        else for (const [l, n] of v) this.inc(l, n);
      },
    });
  const gauge = (
    name: string,
    help: string,
    value: () => number | undefined,
    labels?: Record<string, string>,
  ) =>
    new Gauge({
      name: P + name,
      help,
      labelNames: labels ? Object.keys(labels) : [],
      registers: [registry],
      collect() {
        this.reset();
        const v = value();
        if (v === undefined) return;
        if (labels) this.set(labels, v);
        else this.set(v);
      },
    });
  const w = () => cur().s.writer;
  const c = () => cur().s.consumer;
  gauge("build_info", "fieldrelay version running (always 1)", () => 1, { version });
  gauge(
    "health_status",
    "0 healthy, 1 degraded, 2 unhealthy",
    () => ({ healthy: 0, degraded: 1, unhealthy: 2 })[cur().h.status],
  );
  total("messages_received_total", "MQTT messages received on the subscriptions", () => c().received);
  total("messages_acked_total", "PUBACKs sent, each after its transaction committed", () => c().acked);
  total(
    "stale_acks_dropped_total",
    "Acks not sent because the connection that carried the message closed (the broker redelivers)",
    () => c().staleAcksDropped,
  );
  total("readings_inserted_total", "Readings inserted (new (device, seq))", () => w().inserted);
  total(
    "readings_duplicate_total",
    "Readings dropped as duplicates of a stored (device, seq)",
    () => w().duplicates,
  );
  total("readings_corrected_total", "Stored readings re-stamped by a clock message", () => w().corrected);
  total(
    "dead_letters_total",
    "Messages stored as dead letters, by kind",
    () =>
      Object.entries({
        ...c().deadByKind,
        ...(w().refusedByDatabase ? { "refused-by-database": w().refusedByDatabase } : {}),
      }).map(([kind, n]) => [{ kind }, n]),
    ["kind"],
  );
  total(
    "messages_ignored_total",
    "Messages acknowledged and not stored (edge status and command topics)",
    () => Object.entries(c().ignored).map(([why, n]) => [{ topic: why }, n]),
    ["topic"],
  );
  total("commits_total", "Transactions committed", () => w().commits);
  total(
    "commit_failures_total",
    "Transactions that failed (database unreachable or refusing)",
    () => w().commitFailures,
  );
  total("mqtt_reconnects_total", "Broker reconnect attempts", () => c().reconnects);
  gauge("mqtt_connected", "1 while connected to the broker", () => (c().connected ? 1 : 0));
  gauge("database_up", "1 while commits succeed", () => (w().databaseUp ? 1 : 0));
  gauge("pending_messages", "Messages received and not yet committed (not acknowledged)", () => w().pending);
  gauge(
    "lag_seconds",
    "Age of the oldest received message not yet committed (0 when none)",
    () => cur().h.oldest_pending_age_s ?? 0,
  );
  gauge(
    "readings_per_second",
    "Readings committed per second over the last 10 s",
    () => cur().s.readingsPerSecond,
  );
  const latency = new Summary({
    name: `${P}commit_latency_seconds`,
    help: "From a message's arrival to the commit of its transaction",
    percentiles: [0.5, 0.9, 0.99],
    maxAgeSeconds: 60,
    ageBuckets: 3,
    registers: [registry],
  });
  return {
    registry,
    observeCommit(latencyMs) {
      for (const ms of latencyMs) latency.observe(ms / 1000);
    },
    async render(status, health) {
      snap = { s: status, h: health };
      try {
        return await registry.metrics();
      } finally {
        snap = undefined;
      }
    },
  };
}

export interface SinkHealthServer {
  port: number;
  stop(): Promise<void>;
}

export function startSinkHealthServer(options: {
  listen: Listen;
  token: string | undefined;
  status: () => SinkStatus;
  metrics: SinkMetrics;
  version: string;
  log: Logger;
  /** CLOCK_MONOTONIC ms for the wrong-token limit (default performance.now). */
  monoMs?: () => number;
}): SinkHealthServer {
  const { listen, token, status, metrics, version, log } = options;
  assertListenAllowed(listen.host, token);
  // Wrong tokens per client: after a few, 429 + Retry-After, twice as long each time (src/http/auth-limit.ts).
  const limiter = new AuthLimiter({ now: options.monoMs ?? (() => performance.now()) });
  const server = Bun.serve({
    hostname: listen.host,
    port: listen.port,
    async fetch(req, srv) {
      const url = new URL(req.url);
      const remote = srv.requestIP(req)?.address;
      const tries = token !== undefined && req.headers.has("authorization");
      const check = tries ? limiter.check(remote) : { allowed: true as const };
      if (!check.allowed)
        return jsonError(
          429,
          `too many wrong tokens from this address: try again in ${check.retryAfterS} s with health.token (FIELDRELAY_SINK_HEALTH_TOKEN)`,
          { "retry-after": String(check.retryAfterS) },
        );
      if (!isAuthorized(req.headers.get("authorization"), token)) {
        if (tries) limiter.failure(remote);
        return jsonError(401, 'missing or wrong token: send "Authorization: Bearer <health.token>"', {
          "www-authenticate": 'Bearer realm="fieldrelay"',
        });
      }
      if (tries) limiter.success(remote);
      if (url.pathname !== "/health" && url.pathname !== "/metrics")
        return jsonError(404, "not found: try GET /health or GET /metrics");
      const s = status();
      const body = sinkHealth(s, version);
      if (url.pathname === "/health")
        return Response.json(body, { status: body.status === "unhealthy" ? 503 : 200 });
      return new Response(await metrics.render(s, body), {
        headers: { "content-type": metrics.registry.contentType },
      });
    },
  });
  log.info({ host: listen.host, port: server.port }, "sink health endpoint listening");
  return {
    port: server.port ?? listen.port,
    async stop() {
      await server.stop(true);
    },
  };
}
