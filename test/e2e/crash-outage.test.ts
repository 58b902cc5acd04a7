import mqtt from "mqtt";
import { afterAll, describe, expect, it } from "vitest";
import { openQueueReader } from "../../src/queue/index.ts";
import { binaryMissing, type Flavor, spawn, Workspace } from "../support/fieldrelay.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { AARCH64_LIBC, MOSQUITTO, missing, QEMU_AARCH64 } from "../support/tools.ts";

const flavor: Flavor = "arm64";
const skip = binaryMissing(flavor) ?? missing(MOSQUITTO, QEMU_AARCH64, AARCH64_LIBC);

async function until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}

describe.skipIf(skip)("compiled ARM64 binary under qemu: kill -9 and broker outage", () => {
  const ws = new Workspace();
  let broker: MosquittoBroker;
  afterAll(async () => {
    await broker?.close();
    ws.cleanup();
  });

  it("delivers every committed reading after a kill -9 and an outage (duplicates allowed)", async () => {
    // Persistent, so the subscriber's session (clean: false) keeps what is published while it reconnects.
    broker = await MosquittoBroker.start({ persistent: true });
    const config = ws.writeConfig({
      device: { id: "pi-crash" },
      mqtt: { url: broker.url, min_backoff_s: 0.2, max_backoff_s: 1 },
      queue: { path: ws.queuePath, commit_interval_ms: 100 },
      ingest: { listen: "" },
      health: { listen: "" },
      rtc: { mode: "none" },
      sensor: [{ name: "sim", driver: "simulated", interval_s: 0.05, seed: 1 }],
    });
    const received = new Map<number, number>();
    const subscriber = await mqtt.connectAsync(broker.url, {
      clientId: "e2e-counter",
      clean: false,
      reconnectPeriod: 200,
    });
    await subscriber.subscribeAsync("fieldrelay/pi-crash/+", { qos: 1 });
    subscriber.on("message", (topic, payload) => {
      if (topic.endsWith("/status")) return;
      const seq = (JSON.parse(payload.toString()) as { seq: number }).seq;
      received.set(seq, (received.get(seq) ?? 0) + 1);
    });

    // 1. Run and deliver; then the broker goes down, a backlog builds, and the process is killed -9.
    const first = spawn(flavor, ["run", "-c", config]);
    await first.waitForLog((l) => l.msg === "fieldrelay ready", 90_000);
    await until("first deliveries", () => received.size >= 20);
    await broker.stop("SIGTERM");
    await Bun.sleep(1500);
    first.kill("SIGKILL");
    await first.exited;
    const reader = openQueueReader(ws.queuePath);
    const committedAtCrash = [...reader.export()].map((r) => r.seq);
    reader.close();
    expect(committedAtCrash.length).toBeGreaterThan(0);

    // 2. Restart the binary while the broker is still down: it keeps capturing offline.
    const second = spawn(flavor, ["run", "-c", config]);
    await second.waitForLog((l) => l.msg === "fieldrelay ready", 90_000);
    await Bun.sleep(1500);
    // 3. Broker back: the backlog drains; then a clean stop.
    await broker.start();
    await until("backlog drained", () => {
      const r = openQueueReader(ws.queuePath);
      const rows = r.stats().rows;
      r.close();
      return rows === 0 && received.size > committedAtCrash.length;
    });
    second.kill("SIGTERM");
    expect(await second.exited).toBe(0);
    await Bun.sleep(500);
    await subscriber.endAsync();

    const missingSeqs = committedAtCrash.filter((seq) => !received.has(seq));
    expect(missingSeqs).toEqual([]);
    const final = openQueueReader(ws.queuePath);
    expect(final.stats().rows).toBe(0);
    final.close();
    const duplicates = [...received.values()].filter((n) => n > 1).length;
    console.log(
      `delivered ${received.size} distinct seqs, ${duplicates} duplicated, ${committedAtCrash.length} were queued at the crash`,
    );
  });
});
