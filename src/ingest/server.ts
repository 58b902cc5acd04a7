/**
 * The local ingest endpoint: other programs on the device hand readings to fieldrelay with
 * POST /v1/readings. 201 {"seqs": [...]} only once every reading of the body is committed to
 * queue.db (for every QoS; the commit comes within a few ms, see Queue.store); 400 with the
 * reason and nothing queued; 503 when the queue refuses or cannot store them — then none of the
 * body is stored or published (all or nothing).
 */
import type { Stamp } from "../clock/types.ts";
import type { Listen } from "../config/index.ts";
import type { Logger } from "../log/index.ts";
import type { Queue } from "../queue/types.ts";
import { type ParseDefaults, parseReadings } from "./parse.ts";

export interface IngestOptions {
  listen: Listen;
  maxBodyBytes: number;
  queue: Pick<Queue, "store">;
  /** The clock's stamp for "now". */
  now: () => Stamp;
  defaults: ParseDefaults;
  log: Logger;
}

export interface IngestServer {
  port: number;
  stop(): Promise<void>;
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

export function startIngestServer(options: IngestOptions): IngestServer {
  const { queue, log } = options;
  const server = Bun.serve({
    hostname: options.listen.host,
    port: options.listen.port,
    // Bun answers 413 itself past this; below it our own check answers 400 with the reason.
    maxRequestBodySize: options.maxBodyBytes * 2 + 65536,
    async fetch(request) {
      const url = new URL(request.url);
      if (url.pathname !== "/v1/readings")
        return json(404, { error: `no such endpoint ${url.pathname}; POST /v1/readings` });
      if (request.method !== "POST") return json(405, { error: "use POST" });
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
      // All or nothing, and 201 only once committed (group commit: see Queue.store).
      const result = await queue.store(
        parsed.readings.map((r) => {
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
        }),
      );
      if (!result.ok) {
        log.warn(
          { reason: result.detail, readings: parsed.readings.length },
          "ingest request refused: nothing stored",
        );
        return json(503, { error: `queue refused the readings, none was stored: ${result.detail}` });
      }
      const seqs = result.seqs;
      return json(201, { seqs });
    },
    error(error) {
      log.error({ err: error }, "ingest request failed");
      return json(500, { error: "internal error" });
    },
  });
  log.info({ listen: `${server.hostname}:${server.port}` }, "ingest listening");
  return {
    port: server.port ?? options.listen.port,
    stop: async () => {
      await server.stop(true);
    },
  };
}
