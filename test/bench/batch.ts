/**
 * Batching benchmarks ([mqtt.batch], README "Batch format"), each beside its baseline in the same run:
 *
 * 5. bytes on the wire per reading: the Publisher drains a backlog of the four simulated profiles
 *    (one stream each, values from the simulator, a steady interval) through a loopback proxy that
 *    counts TCP payload bytes both ways (MQTT framing, PUBACKs, CONNECT and status included),
 *    batching on with its defaults vs off (one JSON envelope per reading). Target ≤ 25 B/reading.
 * 6. drain a 100 000-reading backlog from the SQLite queue to mosquitto, batching on with its
 *    defaults, vs raw mqtt.js publishing one QoS 1 message per reading. Target ratio ≥ 5.
 *
 *   ./node_modules/.bin/bun test/bench/batch.ts [readings-per-profile] [drain-readings]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configSchema } from "../../src/config/index.ts";
import { silentLogger } from "../../src/log/index.ts";
import { createPublisher } from "../../src/publish/index.ts";
import { openQueue } from "../../src/queue/index.ts";
import type { Queue, Reading } from "../../src/queue/types.ts";
import { seededRandom, simulate } from "../../src/sensors/simulated/model.ts";
import { profileNames, profiles } from "../../src/sensors/simulated/profiles.ts";
import { CountingProxy } from "../support/counting-proxy.ts";
import { MemoryQueue } from "../support/memory-queue.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { runRaw } from "./drain.ts";
import type { BenchRow } from "./run.ts";

const DEVICE = "bench-1";

/** Readings of every simulated profile, interleaved as four sensors sampling side by side. */
export function profileBacklog(perProfile: number): Reading[] {
  const out: Reading[] = [];
  const random = seededRandom(11);
  const t0 = Date.UTC(2026, 10, 30, 0, 0, 0, 0);
  for (let i = 0; i < perProfile; i++) {
    for (const name of profileNames) {
      const p = profiles[name];
      const wallMs = t0 + i * p.defaultIntervalS * 1000 + Math.round(random() * 3);
      const sim = simulate(p, { cpu_pct: 0, temperature_c: 1 }, wallMs, random);
      out.push({
        bootId: "bench-boot",
        monoNs: BigInt(wallMs - t0) * 1_000_000n,
        wallMs,
        tq: "ntp",
        stream: name,
        priority: 5,
        qos: 1,
        values: sim.anomaly ? { ...sim.values, ...sim.anomaly } : sim.values,
        ...(sim.anomaly ? { anomaly: true } : {}),
      });
    }
  }
  return out;
}

async function until(cond: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`benchmark timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Drain `queue` (n readings) to url; returns seconds from start() to the last ack. */
async function drain(url: string, queue: Queue, n: number, batch: boolean): Promise<number> {
  const publisher = createPublisher({
    mqtt: configSchema.parse({ device: { id: DEVICE }, mqtt: { url, batch: { enabled: batch } } }).mqtt,
    deviceId: DEVICE,
    queue,
    stamp: (r) => ({ wallMs: r.wallMs, tq: r.tq, errMs: 0 }),
  });
  const t0 = performance.now();
  publisher.start();
  await until(() => publisher.stats().delivered >= n, "drain");
  const seconds = (performance.now() - t0) / 1000;
  await publisher.stop(5000);
  return seconds;
}

export interface WireBytesResult {
  readings: number;
  batchedBytesPerReading: number;
  singleBytesPerReading: number;
}

export async function runWireBytes(perProfile = 5000, url?: string): Promise<WireBytesResult> {
  const broker = url ? undefined : await MosquittoBroker.start();
  const port = Number(new URL(url ?? broker!.url).port);
  const proxy = await CountingProxy.start(port);
  try {
    const readings = profileBacklog(perProfile);
    const measure = async (batch: boolean) => {
      const queue = new MemoryQueue();
      for (const r of readings) queue.capture(r);
      proxy.reset();
      await drain(proxy.url, queue, readings.length, batch);
      await new Promise((r) => setTimeout(r, 50)); // the DISCONNECT reaches the proxy
      return proxy.total / readings.length;
    };
    const singleBytesPerReading = await measure(false);
    const batchedBytesPerReading = await measure(true);
    return { readings: readings.length, batchedBytesPerReading, singleBytesPerReading };
  } finally {
    await proxy.close();
    await broker?.close();
  }
}

export interface BatchDrainResult {
  readings: number;
  /** Batched drain from the SQLite queue (what a device runs). */
  batchedPerS: number;
  /** The same from the in-memory test queue: the publisher's own ceiling, without storage. */
  batchedMemoryPerS: number;
  rawPerS: number;
}

export async function runBatchDrain(n = 100_000, url?: string): Promise<BatchDrainResult> {
  const broker = url ? undefined : await MosquittoBroker.start();
  const target = url ?? broker!.url;
  const dir = mkdtempSync(join(tmpdir(), "fr-bench-batch-"));
  try {
    const readings = profileBacklog(Math.ceil(n / profileNames.length)).slice(0, n);
    const raw = new MemoryQueue();
    for (const r of readings) raw.capture(r);
    const rawS = await runRaw(target, raw.next(n, new Set()));
    const queue = await openQueue({ path: join(dir, "queue.db"), log: silentLogger(), maxRows: 1_000_000 });
    for (const r of readings) queue.capture(r);
    await queue.flush();
    const batchedS = await drain(target, queue, n, true);
    await queue.close();
    const memory = new MemoryQueue();
    for (const r of readings) memory.capture(r);
    const memoryS = await drain(target, memory, n, true);
    return { readings: n, batchedPerS: n / batchedS, batchedMemoryPerS: n / memoryS, rawPerS: n / rawS };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await broker?.close();
  }
}

export async function batchRows(): Promise<BenchRow[]> {
  const wire = await runWireBytes();
  const drained = await runBatchDrain();
  return [
    {
      name: `bytes on the wire per reading, ${wire.readings} readings of the 4 simulated profiles, batching on (defaults) vs one message per reading`,
      value: wire.batchedBytesPerReading,
      unit: "B",
      baseline: wire.singleBytesPerReading,
      ratio: wire.batchedBytesPerReading / wire.singleBytesPerReading,
      target: "≤ 25 B",
    },
    {
      name: `drain a ${drained.readings} backlog, batching on (defaults), SQLite queue → mosquitto (vs raw mqtt.js, 1 QoS 1 message per reading)`,
      value: drained.batchedPerS,
      unit: "readings/s",
      baseline: drained.rawPerS,
      ratio: drained.batchedPerS / drained.rawPerS,
      target: "ratio ≥ 5",
    },
    {
      name: `the same from the in-memory test queue: the publisher's own ceiling, without storage`,
      value: drained.batchedMemoryPerS,
      unit: "readings/s",
      baseline: drained.rawPerS,
      ratio: drained.batchedMemoryPerS / drained.rawPerS,
      target: "(where the time goes)",
    },
  ];
}

if (import.meta.main) {
  const perProfile = process.argv[2] ? Number(process.argv[2]) : undefined;
  const drainN = process.argv[3] ? Number(process.argv[3]) : undefined;
  const wire = await runWireBytes(perProfile);
  console.log(
    `bytes/reading over ${wire.readings} readings: batched ${wire.batchedBytesPerReading.toFixed(1)} B, one message per reading ${wire.singleBytesPerReading.toFixed(1)} B`,
  );
  const d = await runBatchDrain(drainN);
  console.log(
    `drain ${d.readings}: batched ${Math.round(d.batchedPerS)} readings/s (in-memory queue ${Math.round(d.batchedMemoryPerS)}), raw mqtt.js ${Math.round(d.rawPerS)} readings/s, ratio ${(d.batchedPerS / d.rawPerS).toFixed(1)} (${(d.batchedMemoryPerS / d.rawPerS).toFixed(1)})`,
  );
}
