/**
 * Batching benchmarks ([mqtt.batch], README "Batch format"), each beside its baseline in the same run:
 *
 * 5. bytes on the wire per reading: the Publisher drains a backlog of the four simulated profiles
 *    (one stream each, values from the simulator, a steady interval) through a loopback proxy that
 *    counts TCP payload bytes both ways (MQTT framing, PUBACKs, CONNECT and status included),
 *    batching on with its defaults vs off (one JSON envelope per reading). Target ≤ 25 B/reading.
 * 6. drain a 100 000-reading backlog from the SQLite queue (on disk, filled and committed before
 *    the clock starts) to mosquitto, batching on with its defaults, vs raw mqtt.js publishing one
 *    QoS 1 message per reading (payloads built before its clock starts). Target ratio ≥ 5. Also
 *    from the in-memory test queue (the publisher's own ceiling, without storage), and the
 *    main thread's CPU time per reading on each side (Linux: /proc/self/task/<pid>/schedstat),
 *    which a loaded machine distorts far less than wall time: where the time goes.
 * 7. drain a backlog over a link with a 100 ms round trip (the proxy delays each way), batching
 *    on vs off, both with max_inflight 64: what an LTE or satellite link feels.
 * 8. drain a backlog over a metered link — 2 Mbit/s each way, 60 ms round trip (an LTE uplink; the
 *    proxy serialises each direction at that rate) — batched from the SQLite queue vs raw mqtt.js
 *    one QoS 1 message per reading with its wide window, through the same link: the drain the
 *    issue is about, where the link and not the CPU sets the pace.
 *
 *   ./node_modules/.bin/bun test/bench/batch.ts [readings-per-profile] [drain-readings]
 *   ./node_modules/.bin/bun test/bench/batch.ts drain [runs] [drain-readings]   (only 6, repeated)
 *   ./node_modules/.bin/bun test/bench/batch.ts metered                          (only 8)
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PublishStamp } from "../../src/clock/types.ts";
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
export function profileBacklog(perProfile: number, tq: "ntp" | "unsynced" = "ntp"): Reading[] {
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
        tq,
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

/** CPU time of this process's main thread in ns (Linux), else undefined. */
function mainThreadNs(): number | undefined {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, "utf8").split(" ")[0]);
  } catch {
    return undefined;
  }
}

/** Run `f`, returning its result and the main thread's CPU µs spent meanwhile per `n`. */
async function onMainThread<T>(n: number, f: () => Promise<T>): Promise<{ result: T; usPer?: number }> {
  const before = mainThreadNs();
  const result = await f();
  const after = mainThreadNs();
  return before === undefined || after === undefined
    ? { result }
    : { result, usPer: (after - before) / 1000 / n };
}

async function until(cond: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`benchmark timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** The clock's stamp: a fixed bound when synced, else one growing 50 µs per second of monotonic time. */
function benchStamp(r: Reading): PublishStamp {
  const errMs = r.tq === "ntp" ? 12 : 1000 + Number(r.monoNs / 20_000_000_000n);
  return { wallMs: r.wallMs, tq: r.tq, errMs };
}

/** Drain `queue` (n readings) to url; returns seconds from start() to the last ack. */
async function drain(url: string, queue: Queue, n: number, batch: boolean): Promise<number> {
  const publisher = createPublisher({
    mqtt: configSchema.parse({ device: { id: DEVICE }, mqtt: { url, batch: { enabled: batch } } }).mqtt,
    deviceId: DEVICE,
    queue,
    stamp: benchStamp,
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

export async function runWireBytes(
  perProfile = 5000,
  tq: "ntp" | "unsynced" = "ntp",
  url?: string,
): Promise<WireBytesResult> {
  const broker = url ? undefined : await MosquittoBroker.start();
  const port = Number(new URL(url ?? broker!.url).port);
  const proxy = await CountingProxy.start(port);
  try {
    const readings = profileBacklog(perProfile, tq);
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
  /** Main-thread CPU µs per reading: batched from SQLite, and raw mqtt.js (Linux only). */
  batchedMainUs?: number;
  rawMainUs?: number;
}

export async function runBatchDrain(n = 100_000, url?: string): Promise<BatchDrainResult> {
  const broker = url ? undefined : await MosquittoBroker.start();
  const target = url ?? broker!.url;
  const dir = mkdtempSync(join(tmpdir(), "fr-bench-batch-"));
  try {
    const readings = profileBacklog(Math.ceil(n / profileNames.length)).slice(0, n);
    const raw = new MemoryQueue();
    for (const r of readings) raw.capture(r);
    const rows = raw.next(n, new Set());
    const rawRun = await onMainThread(n, () => runRaw(target, rows));
    const queue = await openQueue({ path: join(dir, "queue.db"), log: silentLogger(), maxRows: 1_000_000 });
    for (const r of readings) queue.capture(r);
    await queue.flush();
    const batchedRun = await onMainThread(n, () => drain(target, queue, n, true));
    await queue.close();
    const memory = new MemoryQueue();
    for (const r of readings) memory.capture(r);
    const memoryS = await drain(target, memory, n, true);
    return {
      readings: n,
      batchedPerS: n / batchedRun.result,
      batchedMemoryPerS: n / memoryS,
      rawPerS: n / rawRun.result,
      ...(batchedRun.usPer !== undefined ? { batchedMainUs: batchedRun.usPer } : {}),
      ...(rawRun.usPer !== undefined ? { rawMainUs: rawRun.usPer } : {}),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await broker?.close();
  }
}

export interface SlowLinkResult {
  readings: number;
  rttMs: number;
  batchedPerS: number;
  singlePerS: number;
}

/** n is a multiple of 4 streams × 500 (max_readings), so no partial batch waits for max_delay_ms. */
export async function runSlowLink(n = 4000, rttMs = 100): Promise<SlowLinkResult> {
  const broker = await MosquittoBroker.start();
  const proxy = await CountingProxy.start(broker.port, { delayMs: rttMs / 2 });
  try {
    const readings = profileBacklog(Math.ceil(n / profileNames.length)).slice(0, n);
    const measure = async (batch: boolean) => {
      const queue = new MemoryQueue();
      for (const r of readings) queue.capture(r);
      return n / (await drain(proxy.url, queue, n, batch));
    };
    return { readings: n, rttMs, singlePerS: await measure(false), batchedPerS: await measure(true) };
  } finally {
    await proxy.close();
    await broker.close();
  }
}

export interface MeteredLinkResult {
  batchedReadings: number;
  rawReadings: number;
  bitsPerS: number;
  rttMs: number;
  batchedPerS: number;
  rawPerS: number;
}

/**
 * Raw mqtt.js needs ~226 B a reading, so at 2 Mbit/s it moves ~1 100 readings/s: it drains fewer
 * readings (rawN) than the batched side (n) to keep the run short; both are readings/s at the link.
 */
export async function runMeteredLink(
  n = 100_000,
  rawN = 10_000,
  bitsPerS = 2_000_000,
  rttMs = 60,
): Promise<MeteredLinkResult> {
  const broker = await MosquittoBroker.start();
  const proxy = await CountingProxy.start(broker.port, { delayMs: rttMs / 2, bytesPerS: bitsPerS / 8 });
  const dir = mkdtempSync(join(tmpdir(), "fr-bench-metered-"));
  try {
    const readings = profileBacklog(Math.ceil(n / profileNames.length)).slice(0, n);
    const raw = new MemoryQueue();
    for (const r of readings.slice(0, rawN)) raw.capture(r);
    const rawS = await runRaw(proxy.url, raw.next(rawN, new Set()));
    const queue = await openQueue({ path: join(dir, "queue.db"), log: silentLogger(), maxRows: 1_000_000 });
    for (const r of readings) queue.capture(r);
    await queue.flush();
    const batchedS = await drain(proxy.url, queue, n, true);
    await queue.close();
    return {
      batchedReadings: n,
      rawReadings: rawN,
      bitsPerS,
      rttMs,
      batchedPerS: n / batchedS,
      rawPerS: rawN / rawS,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await proxy.close();
    await broker.close();
  }
}

export async function batchRows(): Promise<BenchRow[]> {
  const wire = await runWireBytes();
  const offline = await runWireBytes(5000, "unsynced");
  const drained = await runBatchDrain();
  const slow = await runSlowLink();
  const metered = await runMeteredLink();
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
      name: `the same, stamped offline (tq unsynced: every envelope also carries boot and mono_ms)`,
      value: offline.batchedBytesPerReading,
      unit: "B",
      baseline: offline.singleBytesPerReading,
      ratio: offline.batchedBytesPerReading / offline.singleBytesPerReading,
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
    ...(drained.batchedMainUs !== undefined && drained.rawMainUs !== undefined
      ? [
          {
            name: `the SQLite drain's main-thread CPU per reading (vs raw mqtt.js per message): what a loaded machine distorts least`,
            value: drained.batchedMainUs,
            unit: "µs",
            baseline: drained.rawMainUs,
            ratio: drained.rawMainUs / drained.batchedMainUs,
            target: "(where the time goes)",
          },
        ]
      : []),
    {
      name: `drain ${slow.readings} readings over a link with a ${slow.rttMs} ms round trip, max_inflight 64, batching on vs off`,
      value: slow.batchedPerS,
      unit: "readings/s",
      baseline: slow.singlePerS,
      ratio: slow.batchedPerS / slow.singlePerS,
      target: "(a slow link)",
    },
    {
      name: `drain a ${metered.batchedReadings} backlog over a ${metered.bitsPerS / 1e6} Mbit/s link with a ${metered.rttMs} ms round trip, batching on, SQLite queue → mosquitto (vs raw mqtt.js, 1 QoS 1 message per reading, ${metered.rawReadings} readings, same link)`,
      value: metered.batchedPerS,
      unit: "readings/s",
      baseline: metered.rawPerS,
      ratio: metered.batchedPerS / metered.rawPerS,
      target: "ratio ≥ 5",
    },
  ];
}

function describeDrain(d: BatchDrainResult): string {
  const main =
    d.batchedMainUs !== undefined && d.rawMainUs !== undefined
      ? `; main thread ${d.batchedMainUs.toFixed(2)} µs/reading vs raw ${d.rawMainUs.toFixed(2)} µs/message (×${(d.rawMainUs / d.batchedMainUs).toFixed(2)})`
      : "";
  return `drain ${d.readings}: batched ${Math.round(d.batchedPerS)} readings/s (in-memory queue ${Math.round(d.batchedMemoryPerS)}), raw mqtt.js ${Math.round(d.rawPerS)} readings/s, ratio ${(d.batchedPerS / d.rawPerS).toFixed(2)} (${(d.batchedMemoryPerS / d.rawPerS).toFixed(2)})${main}`;
}

if (import.meta.main && process.argv[2] === "metered") {
  const m = await runMeteredLink();
  console.log(
    `over ${m.bitsPerS / 1e6} Mbit/s, ${m.rttMs} ms round trip: batched ${Math.round(m.batchedPerS)} readings/s (${m.batchedReadings} from SQLite), raw mqtt.js ${Math.round(m.rawPerS)} readings/s (${m.rawReadings}), ratio ${(m.batchedPerS / m.rawPerS).toFixed(1)}`,
  );
} else if (import.meta.main && process.argv[2] === "drain") {
  const runs = process.argv[3] ? Number(process.argv[3]) : 3;
  const n = process.argv[4] ? Number(process.argv[4]) : undefined;
  const { loadavg } = await import("node:os");
  for (let i = 0; i < runs; i++) {
    const d = await runBatchDrain(n);
    console.log(`${describeDrain(d)} (load ${loadavg()[0]?.toFixed(1)})`);
  }
} else if (import.meta.main) {
  const perProfile = process.argv[2] ? Number(process.argv[2]) : undefined;
  const drainN = process.argv[3] ? Number(process.argv[3]) : undefined;
  for (const tq of ["ntp", "unsynced"] as const) {
    const wire = await runWireBytes(perProfile, tq);
    console.log(
      `bytes/reading over ${wire.readings} readings (${tq}): batched ${wire.batchedBytesPerReading.toFixed(1)} B, one message per reading ${wire.singleBytesPerReading.toFixed(1)} B`,
    );
  }
  const slow = await runSlowLink();
  console.log(
    `over a ${slow.rttMs} ms round trip: batched ${Math.round(slow.batchedPerS)} readings/s, one message per reading ${Math.round(slow.singlePerS)} readings/s`,
  );
  const m = await runMeteredLink();
  console.log(
    `over ${m.bitsPerS / 1e6} Mbit/s, ${m.rttMs} ms round trip: batched ${Math.round(m.batchedPerS)} readings/s (${m.batchedReadings} from SQLite), raw mqtt.js ${Math.round(m.rawPerS)} readings/s (${m.rawReadings}), ratio ${(m.batchedPerS / m.rawPerS).toFixed(1)}`,
  );
  console.log(describeDrain(await runBatchDrain(drainN)));
}
