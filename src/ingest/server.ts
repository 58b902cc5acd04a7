/**
 * The local ingest endpoint: other programs on the device hand readings to fieldrelay with
 * POST /v1/readings. 201 {"seqs": [...]} only once every reading of the body is captured:
 * committed to queue.db or acked by the broker, whichever comes first (QoS 0: committed; the
 * commit comes within queue.ingest_commit_ms, see Queue.store); 400 with the reason and nothing
 * queued; 503 when the queue refuses or cannot store them — then none of the body is stored
 * (all or nothing; the error names any seqs the broker had already been sent).
 */

import type { Server } from "bun";
import type { Stamp } from "../clock/types.ts";
import type { Listen } from "../config/index.ts";
import { FieldrelayError } from "../errors/index.ts";
import {
  AuthLimiter,
  guardRequest,
  jsonError,
  type Listener,
  type ListenerPool,
  requestPath,
  serveOnce,
} from "../http/index.ts";
import type { Logger } from "../log/index.ts";
import type { Queue } from "../queue/types.ts";
import { type ParseDefaults, parseReadings } from "./parse.ts";

export interface IngestOptions {
  listen: Listen;
  maxBodyBytes: number;
  /** capture() only for the test-only ACK_BEFORE_COMMIT_ENV path. */
  queue: Pick<Queue, "store"> & Partial<Pick<Queue, "capture">>;
  /** The clock's stamp for "now". */
  now: () => Stamp;
  defaults: ParseDefaults;
  log: Logger;
  /** Keeps the listener open across a config reload (run's SIGHUP); without it stop() closes it. */
  listeners?: ListenerPool | undefined;
  /** ingest.token: required of every request when set (and set it must be off loopback). */
  token?: string | undefined;
  /** CLOCK_MONOTONIC ms for the wrong-token limit (default performance.now). */
  monoMs?: () => number;
}

/** Body types ingest takes: a browser can post neither without a CORS preflight. */
const BODY_TYPES = ["application/json", "application/x-ndjson"] as const;

/** IngestListenError: ingest.listen cannot be bound (names the key, as health's error does). */
export class IngestListenError extends FieldrelayError {}

export interface IngestServer {
  port: number;
  stop(): Promise<void>;
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/** #12: the guard (Host, Origin, token, Content-Type) and the route, before any body is read. */
function refuse(request: Request, token: string | undefined): Response | undefined {
  const path = requestPath(request.url);
  if (path !== "/v1/readings")
    return jsonError(404, `no such endpoint ${path.slice(0, 100)}; POST /v1/readings`);
  if (request.method !== "POST") return jsonError(405, "use POST", { allow: "POST" });
  return guardRequest(request, { token, origin: "none", bodyTypes: BODY_TYPES, tokenKey: "ingest.token" });
}

/**
 * TEST ONLY — FR_TEST_ACK_BEFORE_COMMIT=1 answers 201 before the readings are captured: the
 * deliberately broken build the crash suite (test/crash) must catch, proving it can fail. Read
 * once at start; never set it on a device.
 */
export const ACK_BEFORE_COMMIT_ENV = "FR_TEST_ACK_BEFORE_COMMIT";

export function startIngestServer(options: IngestOptions): IngestServer {
  const { queue, log } = options;
  const ackBeforeCommit = process.env[ACK_BEFORE_COMMIT_ENV] === "1";
  if (ackBeforeCommit)
    log.warn(`${ACK_BEFORE_COMMIT_ENV}=1: ingest answers 201 before commit (test only; loses data)`);
  // Bun answers 413 itself past this; below it our own check answers 400 with the reason.
  const maxRequestBodySize = options.maxBodyBytes * 2 + 65536;
  // Wrong tokens per client: after a few, 429 + Retry-After, twice as long each time (auth-limit.ts).
  const limiter = new AuthLimiter({ now: options.monoMs ?? (() => performance.now()) });
  const handlers = { fetch: handle, error: onError };
  let listener: Listener;
  try {
    // #12: from the pool the listener outlives a config reload (requests wait, none is refused).
    listener = options.listeners
      ? options.listeners.serve("ingest", options.listen, handlers, maxRequestBodySize)
      : serveOnce(options.listen, handlers, maxRequestBodySize);
  } catch (error) {
    throw new IngestListenError(
      `cannot listen on ${options.listen.host}:${options.listen.port} (ingest.listen): ${(error as Error).message}`,
      {
        hint: "another process holds the port (is fieldrelay already running?) or the address is not on this machine; change ingest.listen",
        context: { key: "ingest.listen", code: (error as { code?: string }).code },
        cause: error,
      },
    );
  }
  async function handle(request: Request, server?: Server<undefined>): Promise<Response> {
    const remote = server?.requestIP(request)?.address;
    const tries = options.token !== undefined && request.headers.has("authorization");
    const check = tries ? limiter.check(remote) : { allowed: true as const };
    if (!check.allowed)
      return jsonError(
        429,
        `too many wrong tokens from this address: try again in ${check.retryAfterS} s with ingest.token (FIELDRELAY_INGEST_TOKEN)`,
        { "retry-after": String(check.retryAfterS) },
      );
    const refusal = refuse(request, options.token);
    if (refusal) {
      if (refusal.status === 401 && tries) {
        const waitMs = limiter.failure(remote);
        if (waitMs > 0)
          log.warn({ remote, wait_s: Math.ceil(waitMs / 1000) }, "wrong ingest tokens: this client waits");
      }
      return refusal;
    }
    if (tries) limiter.success(remote);
    const declared = Number(request.headers.get("content-length") ?? "0");
    if (declared > options.maxBodyBytes) {
      return json(400, {
        error: `body is ${declared} bytes, over the limit of ${options.maxBodyBytes} (ingest.max_body_bytes)`,
      });
    }
    let body: string;
    try {
      const bytes = new Uint8Array(await request.arrayBuffer());
      if (bytes.byteLength > options.maxBodyBytes) {
        return json(400, {
          error: `body is over the limit of ${options.maxBodyBytes} bytes (ingest.max_body_bytes)`,
        });
      }
      body = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      return json(400, { error: "body is not valid UTF-8 or exceeds the size limit" });
    }
    const stamp = options.now();
    const parsed = parseReadings(body, stamp.wallMs, options.defaults);
    if (!parsed.ok) {
      log.warn({ reason: parsed.error }, "rejected ingest request");
      return json(400, { error: parsed.error });
    }
    const readings = parsed.readings.map((r) => {
      const ageNs = BigInt(Math.round(r.ageMs * 1e6));
      return {
        ...stamp,
        monoNs: stamp.monoNs - ageNs,
        wallMs: stamp.wallMs - r.ageMs,
        stream: r.stream,
        priority: r.priority,
        qos: r.qos,
        values: r.values,
      };
    });
    if (ackBeforeCommit && queue.capture) {
      // The deliberately broken path (see ACK_BEFORE_COMMIT_ENV): seqs now, commit later.
      const seqs: number[] = [];
      for (const r of readings) {
        const c = queue.capture(r);
        if (c.ok) seqs.push(c.seq);
      }
      return json(201, { seqs });
    }
    // All or nothing, and 201 only once committed or acked (see Queue.store).
    const result = await queue.store(readings);
    if (!result.ok) {
      log.warn(
        { reason: result.detail, readings: parsed.readings.length },
        "ingest request refused: nothing stored",
      );
      return json(503, { error: `queue refused the readings, none was stored: ${result.detail}` });
    }
    const seqs = result.seqs;
    return json(201, { seqs });
  }
  function onError(error: Error): Response {
    log.error({ err: error }, "ingest request failed");
    return jsonError(500, "internal error");
  }
  log.info({ listen: `${listener.server.hostname}:${listener.port}` }, "ingest listening");
  return {
    port: listener.port,
    stop: () => listener.release(),
  };
}
