/**
 * One run of the compiled x64 binary under libfaketime, offline boot to sync, with a broker on
 * the LAN the whole time (a device without internet NTP): readings go out "unsynced" with boot
 * and mono_ms; then NTP steps the clock and reports sync; the device publishes its clock message
 * and a consumer re-stamps what it already has with the reference rule (src/wire/clock.ts).
 *
 * Truth: CLOCK_MONOTONIC is not faked (FAKETIME_DONT_FAKE_MONOTONIC), so the true time of a
 * reading is its mono_ms plus this process's (unfaked) realtime − monotonic offset.
 * Used by test/e2e/clock-faketime.test.ts (once) and `npm run bench clock` (the distribution).
 */
import mqtt from "mqtt";
import { monotonicNs } from "../../src/clock/index.ts";
import { type ClockMessage, decodeClockMessage, restamp } from "../../src/wire/index.ts";
import { OfflineClock } from "./faketime.ts";
import { spawn, Workspace } from "./fieldrelay.ts";
import { MosquittoBroker } from "./mosquitto.ts";

const DEVICE = "pi-faketime-lan";

export interface Published {
  seq: number;
  ts: string;
  tq: string;
  te_ms: number;
  boot?: string;
  mono_ms?: number;
}

export interface RestampResult {
  /** Readings received with tq "unsynced". */
  unsynced: Published[];
  /** Readings received with tq "ntp" after the sync. */
  ntp: Published[];
  clock: ClockMessage;
  /** Per unsynced reading: |re-stamped − truth| and the re-stamped bound, ms. */
  errors: Array<{ seq: number; errorMs: number; teMs: number; tsYear: number }>;
}

/** realtime − CLOCK_MONOTONIC in ms, from the tightest of many back-to-back samples. */
export function realtimeOffsetMs(): number {
  let best: { gap: number; offset: number } | undefined;
  for (let i = 0; i < 200; i++) {
    const a = Number(monotonicNs()) / 1e6;
    const wall = Date.now();
    const b = Number(monotonicNs()) / 1e6;
    // Date.now() counts whole ms: its true value lies in [wall, wall + 1).
    const offset = wall + 0.5 - (a + b) / 2;
    if (best === undefined || b - a < best.gap) best = { gap: b - a, offset };
  }
  return best!.offset;
}

export async function runFaketimeRestamp(): Promise<RestampResult> {
  const ws = new Workspace("fr-faketime-lan-");
  const broker = await MosquittoBroker.start();
  const received = new Map<number, Published>();
  let clock: ClockMessage | undefined;
  const sub = await mqtt.connectAsync(broker.url, { clientId: `sub-${process.pid}-${Date.now()}` });
  sub.on("message", (topic, payload) => {
    if (topic.includes("/clock/")) {
      const msg = decodeClockMessage(payload);
      if (msg.anchors.some((a) => a.src === "ntp")) clock = msg;
      return;
    }
    if (topic.endsWith("/status")) return;
    const m = JSON.parse(payload.toString()) as Published;
    received.set(m.seq, m);
  });
  await sub.subscribeAsync(`fieldrelay/${DEVICE}/#`, { qos: 1 });
  const offline = new OfflineClock(ws.dir);
  const config = ws.writeConfig({
    device: { id: DEVICE },
    mqtt: { url: broker.url, min_backoff_s: 0.2, max_backoff_s: 1 },
    queue: { path: ws.queuePath, commit_interval_ms: 100 },
    ingest: { listen: "" },
    health: { listen: "" },
    ...offline.config,
    sensor: [{ name: "sim", driver: "simulated", interval_s: 0.1, seed: 3 }],
  });
  const child = spawn("x64", ["run", "-c", config], { env: offline.env });
  try {
    await child.waitForLog((l) => l.msg === "fieldrelay ready", 60_000);
    const waitFor = async (what: string, done: () => boolean, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!done()) {
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${what}; ${received.size} readings`);
        await Bun.sleep(50);
      }
    };
    const unsyncedNow = () => [...received.values()].filter((m) => m.tq === "unsynced");
    await waitFor("unsynced readings", () => unsyncedNow().length >= 8);
    // NTP arrives: the clock is stepped to the real time, then sync is reported.
    offline.sync();
    await waitFor("the clock message with an ntp anchor", () => clock !== undefined);
    await waitFor("ntp readings", () => [...received.values()].filter((m) => m.tq === "ntp").length >= 3);
    child.kill("SIGTERM");
    await child.exited;
    const offset = realtimeOffsetMs();
    const unsynced = [...received.values()].filter((m) => m.tq === "unsynced").sort((a, b) => a.seq - b.seq);
    const msg = clock as unknown as ClockMessage;
    const errors = unsynced.map((m) => {
      const r = restamp(m, msg);
      if (!r) throw new Error(`reading ${m.seq} was not re-stamped by ${JSON.stringify(msg)}`);
      return {
        seq: m.seq,
        errorMs: Math.abs(r.wall_ms - (m.mono_ms! + offset)),
        teMs: r.te_ms,
        tsYear: new Date(m.ts).getUTCFullYear(),
      };
    });
    return {
      unsynced,
      ntp: [...received.values()].filter((m) => m.tq === "ntp"),
      clock: msg,
      errors,
    };
  } finally {
    child.kill("SIGKILL");
    await sub.endAsync();
    await broker.close();
    ws.cleanup();
  }
}
