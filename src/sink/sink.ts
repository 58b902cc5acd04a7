/**
 * startSink wires the sink: PostgreSQL (schema migrated first, waiting while the database is
 * unreachable), the group-commit writer, the MQTT consumer (connected only once the schema is
 * ready, so nothing is acknowledged before the sink can store it) and the health endpoint.
 * stop() commits what was received, then ends the broker connection; what arrives after the last
 * commit stays unacknowledged in the session and comes again at the next start.
 */
import { SQL } from "bun";
import { parseListen, redactUrl } from "../config/index.ts";
import { describeError, FieldrelayError } from "../errors/index.ts";
import type { Logger } from "../log/index.ts";
import type { SinkConfig } from "./config.ts";
import { type Consumer, startConsumer } from "./consumer.ts";
import {
  createSinkMetrics,
  type SinkHealthServer,
  type SinkStatus,
  startSinkHealthServer,
} from "./health.ts";
import { isCertificateRejection, postgresTls } from "./postgres-tls.ts";
import { migrate, SchemaError } from "./schema.ts";
import { createPgStore } from "./store.ts";
import { createWriter } from "./writer.ts";

export interface Sink {
  status(): SinkStatus;
  healthPort: number | undefined;
  stop(timeoutMs?: number): Promise<void>;
}

export interface SinkOptions {
  config: SinkConfig;
  log: Logger;
  version: string;
  nowMs?: () => number;
  /** Resolves when startup should give up (e.g. SIGTERM while the database is still down). */
  abort?: AbortSignal;
}

/** SinkDatabaseError: the database refuses the sink for a reason retrying will not fix. */
export class SinkDatabaseError extends FieldrelayError {}

/** Errors that retrying will not fix: wrong password, unknown database or role, a newer schema. */
function fatalAtStart(error: unknown, url: string): FieldrelayError | undefined {
  if (error instanceof SchemaError) return error;
  if (isCertificateRejection(error))
    return new SinkDatabaseError(
      `PostgreSQL at ${redactUrl(url)}: its certificate did not verify: ${describeError(error)}`,
      {
        hint: 'set postgres.ca to the CA that signed the server\'s certificate (or tls = "require" to encrypt without verifying)',
        context: { code: (error as { code?: unknown }).code },
        cause: error,
      },
    );
  const state = (error as { errno?: unknown }).errno;
  if (typeof state !== "string" || !/^(28|3D|42501)/.test(state)) return undefined;
  const hint = /certificate/i.test(describeError(error))
    ? 'the server wants a client certificate: set postgres.cert and postgres.key (with tls = "require" or "verify-full") to one its ssl_ca_file accepts'
    : state.startsWith("28")
      ? "check the user in postgres.url and FIELDRELAY_SINK_POSTGRES_PASSWORD"
      : state === "3D000"
        ? "create the database (createdb) or fix postgres.url"
        : "grant the user CREATE and INSERT/UPDATE/SELECT on the sink's tables";
  return new SinkDatabaseError(`PostgreSQL at ${redactUrl(url)} refused the sink: ${describeError(error)}`, {
    hint,
    context: { sqlstate: state },
    cause: error,
  });
}

export async function startSink(options: SinkOptions): Promise<Sink | undefined> {
  const { config, log } = options;
  const nowMs = options.nowMs ?? (() => performance.now());
  const startedMs = nowMs();
  const sql = new SQL({
    url: config.postgres.url,
    password: config.postgres.password,
    max: 4,
    tls: postgresTls(config.postgres),
    connectionTimeout: config.postgres.connect_timeout_s,
    idleTimeout: 0,
  });
  for (let attempt = 0; ; attempt++) {
    try {
      const applied = await migrate(sql, config.postgres.table);
      log.info(
        { table: config.postgres.table, applied },
        applied.length ? "schema migrated" : "schema up to date",
      );
      break;
    } catch (error) {
      const fatal = fatalAtStart(error, config.postgres.url);
      if (fatal) {
        await sql.close();
        throw fatal;
      }
      if (attempt === 0)
        log.warn({ err: describeError(error) }, "database not reachable yet; retrying before subscribing");
      if (options.abort?.aborted) {
        await sql.close();
        return undefined;
      }
      await Bun.sleep(config.sink.retry_s * 1000);
    }
  }

  const metrics = createSinkMetrics(options.version);
  const window: Array<[number, number]> = [];
  const writer = createWriter({
    store: createPgStore(sql, config.postgres.table),
    batchSize: config.sink.batch_size,
    commitIntervalMs: config.sink.commit_interval_ms,
    retryMs: config.sink.retry_s * 1000,
    log: log.child({ component: "writer" }),
    nowMs,
    onCommit: (latencies, result) => {
      metrics.observeCommit(latencies);
      window.push([nowMs(), result.inserted + result.duplicates]);
    },
  });
  const consumer: Consumer = startConsumer({
    mqtt: config.mqtt,
    maxPending: config.sink.max_pending,
    writer,
    log: log.child({ component: "mqtt" }),
    nowMs,
  });
  const status = (): SinkStatus => {
    const now = nowMs();
    while (window.length > 0 && window[0]![0] < now - 10_000) window.shift();
    const rows = window.reduce((n, [, r]) => n + r, 0);
    return {
      consumer: consumer.stats(),
      writer: writer.stats(),
      startedMs,
      nowMs: now,
      readingsPerSecond: Math.round(rows / Math.min(10, Math.max(1, (now - startedMs) / 1000))),
    };
  };
  let health: SinkHealthServer | undefined;
  const listen = config.health.listen === "" ? undefined : parseListen(config.health.listen);
  if (listen) {
    try {
      health = startSinkHealthServer({
        listen,
        token: config.health.token,
        status,
        metrics,
        version: options.version,
        log,
      });
    } catch (error) {
      await consumer.stop();
      writer.stop();
      await sql.close();
      throw error;
    }
  }
  return {
    status,
    healthPort: health?.port,
    async stop(timeoutMs = 10_000) {
      const drained = await writer.drain(timeoutMs);
      if (!drained)
        log.warn(
          { pending: writer.stats().pending },
          "stopping with uncommitted messages; the broker redelivers them",
        );
      writer.stop();
      await consumer.stop();
      await health?.stop();
      await sql.close();
    },
  };
}
