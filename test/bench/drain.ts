/**
 * Benchmark 2: drain a 100 000-reading backlog at QoS 1 through the Publisher, against raw mqtt.js
 * QoS 1 publishing of the same payloads with no persistence, in the same run against the same
 * mosquitto. Prints both rates and their ratio (target ≥ 0.7).
 *
 *   ./node_modules/.bin/bun test/bench/drain.ts [readings] [max_inflight]
 *
 * runDrainBenchmark(makeQueue) lets the SQLite queue be measured the same way (the default is the
 * in-memory MemoryQueue, so only the publisher's own cost is measured). Filling the queue is not
 * timed; the raw run's payloads are built before its clock starts, so it pays for nothing but MQTT,
 * and it keeps up to RAW_WINDOW (10 000) publishes unacked.
 */
import { connectAsync } from "mqtt";
import { configSchema } from "../../src/config/index.ts";
import { buildEnvelope, createPublisher, encodeEnvelope, streamTopic } from "../../src/publish/index.ts";
import type { Queue, QueuedReading } from "../../src/queue/types.ts";
import { MemoryQueue, reading } from "../support/memory-queue.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";

export interface DrainBenchmarkResult {
  readings: number;
  maxInflight: number;
  publisherMsgPerS: number;
  rawMsgPerS: number;
  ratio: number;
  publisherS: number;
  rawS: number;
}

export interface DrainBenchmarkOptions {
  readings?: number;
  maxInflight?: number;
  /** Use this broker URL instead of starting a mosquitto. */
  url?: string;
}

const DEVICE = "bench-1";
const RAW_WINDOW = 10_000;

function fill(queue: Queue, n: number): void {
  for (let i = 0; i < n; i++) {
    const r = queue.capture(
      reading({ priority: 1 + (i % 10), values: { temperature_c: 20 + (i % 100) / 10, humidity_pct: 45.5 } }),
    );
    if (!r.ok) throw new Error(`queue refused reading ${i}: ${r.detail}`);
  }
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`benchmark timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function runPublisher(url: string, queue: Queue, n: number, maxInflight: number): Promise<number> {
  const publisher = createPublisher({
    mqtt: configSchema.parse({ device: { id: DEVICE }, mqtt: { url, max_inflight: maxInflight } }).mqtt,
    deviceId: DEVICE,
    queue,
    stamp: (r) => ({ wallMs: r.wallMs, tq: r.tq, errMs: 0 }),
  });
  const t0 = performance.now();
  publisher.start();
  await waitFor(() => publisher.stats().delivered >= n, 60_000, "publisher drain");
  const seconds = (performance.now() - t0) / 1000;
  await publisher.stop(5000);
  return seconds;
}

/**
 * The baseline: mqtt.js alone, one QoS 1 message per reading from RAM. It speaks the protocol the
 * publisher speaks by default (MQTT 5 since protocol_version became optional), so the ratio
 * measures fieldrelay, not a protocol change (MQTT 5 costs mqtt.js more per message than 3.1.1).
 */
export async function runRaw(
  url: string,
  rows: QueuedReading[],
  protocolVersion: 4 | 5 = 5,
): Promise<number> {
  const payloads = rows.map((r) => ({
    topic: streamTopic("fieldrelay", DEVICE, r.stream),
    payload: encodeEnvelope(buildEnvelope(r, DEVICE, { wallMs: r.wallMs, tq: r.tq, errMs: 0 })),
  }));
  const t0 = performance.now();
  const client = await connectAsync(url, {
    clientId: "bench-raw",
    reconnectPeriod: 0,
    clean: true,
    protocolVersion,
  });
  // MQTT packet ids are 16-bit: mqtt.js stalls with more than 65 535 unacked, so the raw run keeps
  // a window too — a wide one (RAW_WINDOW), so the baseline is as fast as mqtt.js gets.
  let acked = 0;
  let sent = 0;
  await new Promise<void>((resolve, reject) => {
    const pump = () => {
      while (sent < payloads.length && sent - acked < RAW_WINDOW) {
        const p = payloads[sent++]!;
        client.publish(p.topic, p.payload, { qos: 1 }, (error) => {
          if (error) return reject(error);
          if (++acked === payloads.length) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  const seconds = (performance.now() - t0) / 1000;
  await client.endAsync();
  return seconds;
}

export async function runDrainBenchmark(
  makeQueue: () => Queue | Promise<Queue> = () => new MemoryQueue(),
  options: DrainBenchmarkOptions = {},
): Promise<DrainBenchmarkResult> {
  const n = options.readings ?? 100_000;
  // The config default (64) unless asked otherwise: what a deployment runs with.
  const maxInflight = options.maxInflight ?? configSchema.parse({ device: { id: DEVICE } }).mqtt.max_inflight;
  const broker = options.url ? undefined : await MosquittoBroker.start();
  const url = options.url ?? broker!.url;
  try {
    const rawQueue = new MemoryQueue();
    fill(rawQueue, n);
    const rawS = await runRaw(url, rawQueue.next(n, new Set()));

    const queue = await makeQueue();
    fill(queue, n);
    await queue.flush();
    const publisherS = await runPublisher(url, queue, n, maxInflight);
    await queue.close();

    const publisherMsgPerS = n / publisherS;
    const rawMsgPerS = n / rawS;
    return {
      readings: n,
      maxInflight,
      publisherMsgPerS,
      rawMsgPerS,
      ratio: publisherMsgPerS / rawMsgPerS,
      publisherS,
      rawS,
    };
  } finally {
    await broker?.close();
  }
}

export function formatDrainResult(r: DrainBenchmarkResult): string {
  return [
    `drain ${r.readings} readings at QoS 1 (max_inflight ${r.maxInflight})`,
    `  publisher: ${Math.round(r.publisherMsgPerS)} msg/s (${r.publisherS.toFixed(2)} s)`,
    `  raw mqtt.js: ${Math.round(r.rawMsgPerS)} msg/s (${r.rawS.toFixed(2)} s)`,
    `  ratio: ${r.ratio.toFixed(2)} (target >= 0.7) ${r.ratio >= 0.7 ? "OK" : "BELOW TARGET"}`,
  ].join("\n");
}

if (import.meta.main) {
  const readings = process.argv[2] ? Number(process.argv[2]) : undefined;
  const maxInflight = process.argv[3] ? Number(process.argv[3]) : undefined;
  const result = await runDrainBenchmark(undefined, { readings, maxInflight });
  console.log(formatDrainResult(result));
}
