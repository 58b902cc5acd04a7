/**
 * The shipped ARM64 binary (qemu-user) with [mqtt.batch] on: two simulated sensors, a broker
 * outage, a kill -9 and a restart; a subscriber decodes every message with the README's Python
 * rule (json + zlib) and finds every reading committed at the crash, exactly as the TypeScript
 * decoder reads it, most of them in batches.
 */
import mqtt from "mqtt";
import { afterAll, describe, expect, it } from "vitest";
import { openQueueReader } from "../../src/queue/index.ts";
import { decodeReadings } from "../../src/wire/index.ts";
import { binaryMissing, spawn, Workspace } from "../support/fieldrelay.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { decodeWithReadmePython } from "../support/python-decoder.ts";
import { AARCH64_LIBC, MOSQUITTO, missing, PYTHON3, QEMU_AARCH64 } from "../support/tools.ts";

const skip = binaryMissing("arm64") ?? missing(MOSQUITTO, QEMU_AARCH64, AARCH64_LIBC, PYTHON3);
const DEVICE = "pi-batch";

async function until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}

describe.skipIf(skip)("compiled ARM64 binary under qemu: batched delivery", () => {
  const ws = new Workspace("fr-batch-e2e-");
  let broker: MosquittoBroker;
  afterAll(async () => {
    await broker?.close();
    ws.cleanup();
  });

  it("delivers batches a standard-library decoder reads, through an outage and a kill -9", async () => {
    broker = await MosquittoBroker.start({ persistent: true });
    const config = ws.writeConfig({
      device: { id: DEVICE },
      mqtt: {
        url: broker.url,
        min_backoff_s: 0.2,
        max_backoff_s: 1,
        batch: { enabled: true, max_readings: 50, max_delay_ms: 400 },
      },
      queue: { path: ws.queuePath, commit_interval_ms: 100 },
      ingest: { listen: "" },
      health: { listen: "" },
      rtc: { mode: "none" },
      sensor: [
        { name: "box", driver: "simulated", profile: "sensor", interval_s: 0.02, seed: 1, stream: "env" },
        { name: "gw", driver: "simulated", profile: "gateway", interval_s: 0.05, seed: 2, stream: "net" },
      ],
    });
    const payloads: Uint8Array[] = [];
    // A persistent session with the handler attached before CONNACK: nothing queued for it is missed.
    const subscriber = mqtt.connect(broker.url, {
      clientId: "e2e-batch",
      clean: false,
      reconnectPeriod: 200,
    });
    subscriber.on("message", (topic, payload) => {
      if (!topic.endsWith("/status")) payloads.push(new Uint8Array(payload));
    });
    await new Promise<void>((resolve) => subscriber.once("connect", () => resolve()));
    await subscriber.subscribeAsync(`fieldrelay/${DEVICE}/+`, { qos: 1 });
    const batches = () => payloads.filter((p) => p[0] === 0x78).length;

    const first = spawn("arm64", ["run", "-c", config]);
    await first.waitForLog((l) => l.msg === "fieldrelay ready", 90_000);
    await until("live batches", () => batches() >= 3);
    await broker.stop("SIGTERM");
    const queued = () => {
      const r = openQueueReader(ws.queuePath);
      const rows = r.stats().rows;
      r.close();
      return rows;
    };
    await until("a backlog while the broker is away", () => queued() >= 150);
    first.kill("SIGKILL");
    await first.exited;
    const reader = openQueueReader(ws.queuePath);
    const committedAtCrash = [...reader.export()].map((r) => r.seq);
    reader.close();
    expect(committedAtCrash.length).toBeGreaterThanOrEqual(150);

    await broker.start();
    const second = spawn("arm64", ["run", "-c", config]);
    await second.waitForLog((l) => l.msg === "fieldrelay ready", 90_000);
    // Wait for exactly what is asserted below: every reading committed at the crash decoded at the
    // subscriber. (A row count alone is not enough: live readings keep arriving, and under load an
    // older reading of a lower priority can still be among the last few rows.)
    const delivered = () => new Set(payloads.flatMap((p) => decodeReadings(p).map((r) => r.seq)));
    await until(
      "every reading committed at the crash delivered",
      () => {
        const got = delivered();
        return committedAtCrash.every((seq) => got.has(seq));
      },
      120_000,
    );
    const drainedFrom = payloads.length;
    second.kill("SIGTERM");
    expect(await second.exited).toBe(0);
    await Bun.sleep(500);
    await subscriber.endAsync();

    const python = decodeWithReadmePython(payloads) as Array<Array<{ seq: number }>>;
    expect(python).toEqual(payloads.map((p) => decodeReadings(p)));
    const readings = python.flat() as Array<{
      seq: number;
      device: string;
      stream: string;
      values: object;
      anomaly?: true;
    }>;
    const seen = new Set(readings.map((r) => r.seq));
    expect(committedAtCrash.filter((seq) => !seen.has(seq))).toEqual([]);
    const keys = {
      env: ["cpu_pct", "memory_pct", "temperature_c"],
      net: ["cpu_pct", "temperature_c", "throughput_kbps"],
    };
    for (const r of readings) {
      expect(r.device).toBe(DEVICE);
      // The simulated driver sends an anomaly's spiked value alone, on the "events" stream.
      if (r.stream === "events")
        expect([...keys.env, ...keys.net]).toEqual(expect.arrayContaining(Object.keys(r.values)));
      else expect(Object.keys(r.values).sort()).toEqual(keys[r.stream as keyof typeof keys]);
    }
    // The backlog went out in batches: full ones (max_readings 50), far fewer messages than readings.
    expect(Math.max(...python.map((p) => p.length))).toBe(50);
    expect(readings.length).toBeGreaterThan(10 * payloads.length);
    console.log(
      `${readings.length} readings (${seen.size} distinct) in ${payloads.length} messages (${batches()} batches); ${drainedFrom} messages before the final stop; ${committedAtCrash.length} queued at the crash; sizes ${python.map((p) => p.length).join(",")}`,
    );
  });
});
