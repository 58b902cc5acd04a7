/**
 * The compiled binary's wall clock driven by libfaketime: a device that boots offline with its
 * clock at 2000-01-01 captures readings stamped "unsynced"; then NTP steps the clock to the right
 * time and reports sync (timesyncd's order: step, then the "synchronized" file). The readings
 * still queued must go out with their wall time corrected from the monotonic clock, and later
 * ones as "ntp". CLOCK_MONOTONIC is left real (FAKETIME_DONT_FAKE_MONOTONIC), as on a device.
 */

import mqtt from "mqtt";
import { afterAll, describe, expect, it } from "vitest";
import { openQueueReader } from "../../src/queue/index.ts";
import { OfflineClock, Y2000_MS } from "../support/faketime.ts";
import { runFaketimeRestamp } from "../support/faketime-clock.ts";
import { binaryMissing, spawn, Workspace } from "../support/fieldrelay.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { FAKETIME, MOSQUITTO, missing } from "../support/tools.ts";

const skip = binaryMissing("x64") ?? missing(MOSQUITTO, FAKETIME);

interface Message {
  seq: number;
  ts: string;
  tq: string;
}

describe.skipIf(skip)("compiled x64 binary under libfaketime: offline boot with a wrong clock", () => {
  const ws = new Workspace();
  let broker: MosquittoBroker | undefined;
  afterAll(async () => {
    await broker?.close();
    ws.cleanup();
  });

  it("corrects readings captured before NTP sync from the monotonic clock and marks them corrected", async () => {
    // A persistent subscriber session on a persistent broker, so nothing published before the
    // subscriber is back after the outage is missed. Then: offline boot, no broker yet.
    broker = await MosquittoBroker.start({ persistent: true });
    const subOptions = { clientId: "e2e-faketime", clean: false, reconnectPeriod: 200 } as const;
    const first = await mqtt.connectAsync(broker.url, subOptions);
    await first.subscribeAsync("fieldrelay/pi-faketime/+", { qos: 1 });
    await first.endAsync();
    await broker.stop("SIGTERM");
    const clock = new OfflineClock(ws.dir);
    const config = ws.writeConfig({
      device: { id: "pi-faketime" },
      mqtt: { url: broker.url, min_backoff_s: 0.2, max_backoff_s: 1 },
      queue: { path: ws.queuePath, commit_interval_ms: 100 },
      ingest: { listen: "" },
      health: { listen: "" },
      ...clock.config,
      sensor: [{ name: "sim", driver: "simulated", interval_s: 0.1, seed: 3 }],
    });
    const realStart = Date.now();
    const child = spawn("x64", ["run", "-c", config], { env: clock.env });
    try {
      await child.waitForLog((l) => l.msg === "fieldrelay ready", 60_000);
      await Bun.sleep(1200);

      // What the queue holds now is what the device believed: wall time in 2000, unsynced.
      const reader = openQueueReader(ws.queuePath);
      const before = [...reader.export()];
      reader.close();
      expect(before.length).toBeGreaterThanOrEqual(3);
      for (const r of before) {
        expect(r.tq).toBe("unsynced");
        expect(Math.abs(r.wallMs - Y2000_MS)).toBeLessThan(60_000);
      }

      // NTP arrives: the clock is stepped to the real time, then sync is reported.
      const realSync = Date.now();
      clock.sync();
      await Bun.sleep(800);

      const received = new Map<number, Message>();
      await broker.start();
      // Handler first: the queued messages of the session arrive right after CONNACK.
      const sub = mqtt.connect(broker.url, subOptions);
      const connected = new Promise<void>((resolve) => sub.once("connect", () => resolve()));
      sub.on("message", (topic, payload) => {
        if (topic.endsWith("/status")) return;
        const m = JSON.parse(payload.toString()) as Message;
        received.set(m.seq, m);
      });
      await connected;
      const maxBefore = Math.max(...before.map((r) => r.seq));
      const deadline = Date.now() + 30_000;
      while (
        ![...received.keys()].some((s) => s > maxBefore + 3) ||
        before.some((r) => !received.has(r.seq))
      ) {
        if (Date.now() > deadline) throw new Error(`timed out; received ${received.size} messages`);
        await Bun.sleep(100);
      }
      const realEnd = Date.now();
      await sub.endAsync();

      // Readings queued before the sync: corrected into the real interval in which they were taken.
      for (const r of before) {
        const m = received.get(r.seq) as Message;
        expect(m.tq).toBe("corrected");
        const ts = Date.parse(m.ts);
        expect(ts).toBeGreaterThanOrEqual(realStart - 1000);
        expect(ts).toBeLessThanOrEqual(realSync + 1000);
      }
      // Readings taken after it carry the NTP-synced time.
      const after = [...received.values()].filter((m) => m.seq > maxBefore + 2);
      expect(after.length).toBeGreaterThan(0);
      for (const m of after) {
        expect(m.tq).toBe("ntp");
        expect(Date.parse(m.ts)).toBeGreaterThanOrEqual(realSync - 1000);
        expect(Date.parse(m.ts)).toBeLessThanOrEqual(realEnd + 1000);
      }
      // One timeline: in seq order, times never go backwards across the step.
      const ordered = [...received.values()].sort((a, b) => a.seq - b.seq);
      for (let i = 1; i < ordered.length; i++)
        expect(Date.parse((ordered[i] as Message).ts)).toBeGreaterThanOrEqual(
          Date.parse((ordered[i - 1] as Message).ts),
        );
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("a consumer re-stamps readings it received unsynced from the boot's clock message (reference rule)", async () => {
    const r = await runFaketimeRestamp();
    expect(r.unsynced.length).toBeGreaterThanOrEqual(8);
    for (const m of r.unsynced) {
      // Offline at 2000-01-01: what the device believed, with an honest (huge) bound.
      expect(new Date(m.ts).getUTCFullYear()).toBe(2000);
      expect(m.te_ms).toBeGreaterThan(365 * 86_400_000);
      expect(m.boot).toBe(r.clock.boot);
      expect(typeof m.mono_ms).toBe("number");
    }
    for (const m of r.ntp) expect("boot" in m || "mono_ms" in m).toBe(false);
    // The error figure depends on machine load (npm run bench clock gives the distribution);
    // here: every re-stamped reading is inside its new bound (+1 ms for Date.now()'s resolution).
    for (const e of r.errors) {
      expect(e.errorMs, `seq ${e.seq}`).toBeLessThanOrEqual(e.teMs + 1);
      expect(e.errorMs, `seq ${e.seq}`).toBeLessThan(1000);
    }
    console.log(
      `re-stamp errors (ms) over ${r.errors.length} readings: max ${Math.max(...r.errors.map((e) => e.errorMs)).toFixed(2)}, bound ${Math.max(...r.errors.map((e) => e.teMs))}`,
    );
  }, 120_000);
});
