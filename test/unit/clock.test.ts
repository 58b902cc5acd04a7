import { afterEach, describe, expect, it } from "vitest";
import { SYSTEM_UNCERTAINTY_MS } from "../../src/clock/anchors.ts";
import { type ClockOptions, createClock } from "../../src/clock/clock.ts";
import { ds3231Rtc } from "../../src/clock/rtc/ds3231.ts";
import { Ds3231Model } from "../../src/clock/rtc/model.ts";
import type { Rtc, RtcReading } from "../../src/clock/rtc/types.ts";
import type { Stamp } from "../../src/clock/types.ts";
import { ModelBus } from "../../src/hal/i2c/model-bus.ts";
import { createLogger } from "../../src/log/index.ts";
import { FakeDevice } from "../models/fake-device.ts";
import { MemoryAnchors } from "../support/memory-anchors.ts";

const TRUTH = Date.UTC(2026, 10, 25, 12, 0, 0);
const Y2K = Date.UTC(2000, 0, 1);
let dev: FakeDevice;
afterEach(() => dev?.cleanup());

function capturingLog() {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({
    level: "debug",
    destination: { write: (s: string) => lines.push(JSON.parse(s)) },
  });
  return { log, lines };
}

function clockOn(d: FakeDevice, extra: Partial<ClockOptions> = {}) {
  const anchors = (extra.anchors as MemoryAnchors | undefined) ?? new MemoryAnchors();
  const { log, lines } = capturingLog();
  const clock = createClock({
    root: d.root,
    syncSource: d.syncSource,
    anchors,
    log,
    ...d.clocks,
    scheduler: d.scheduler,
    sleep: async (ms: number) => d.advance(ms),
    anchorIntervalS: 600,
    maxDriftMs: 2000,
    ...extra,
  });
  return { clock, anchors, lines };
}

const fixedRtc = (reading: Partial<RtcReading>, write?: (ms: number) => Promise<void>): Rtc => ({
  path: write ? "i2c" : "kernel",
  description: "test rtc",
  read: async () => ({ wallMs: TRUTH, valid: true, osf: false, temperatureC: undefined, ...reading }),
  ...(write ? { write } : {}),
  close: async () => {},
});

describe("Clock start-up anchors", () => {
  it("reads boot_id under the configured root", () => {
    dev = new FakeDevice("abcdef01-0000-0000-0000-000000000000");
    expect(clockOn(dev).clock.bootId).toBe("abcdef01-0000-0000-0000-000000000000");
  });

  it("fails with the path and a hint when boot_id is missing", () => {
    dev = new FakeDevice();
    expect(() => clockOn({ ...dev, root: `${dev.root}/nope` } as FakeDevice)).toThrow(
      /boot_id: cannot read the boot id/,
    );
  });

  it("records a system anchor with huge uncertainty without an RTC, and stamps unsynced", async () => {
    dev = new FakeDevice();
    const { clock, anchors } = clockOn(dev);
    await clock.start();
    expect(anchors.saved).toEqual([
      {
        bootId: clock.bootId,
        monoNs: dev.monoNs,
        wallMs: Y2K,
        source: "system",
        uncertaintyMs: SYSTEM_UNCERTAINTY_MS,
      },
    ]);
    expect(clock.now()).toEqual({ bootId: clock.bootId, monoNs: dev.monoNs, wallMs: Y2K, tq: "unsynced" });
    expect(clock.status()).toMatchObject({
      source: "system",
      quality: "unsynced",
      synced: false,
      rtcPath: "none",
    });
  });

  it("records an rtc anchor from a valid RTC and derives wall time from it, not the system clock", async () => {
    dev = new FakeDevice();
    const { clock, anchors } = clockOn(dev, { rtc: fixedRtc({}) });
    await clock.start();
    // One plain read at start: the middle of the RTC's second, ±500 ms.
    expect(anchors.saved.map((a) => [a.source, a.wallMs, a.uncertaintyMs])).toEqual([
      ["rtc", TRUTH + 500, 500],
    ]);
    dev.advance(2500);
    expect(clock.now()).toMatchObject({ wallMs: TRUTH + 3000, tq: "rtc" });
    expect(clock.status()).toMatchObject({
      source: "rtc",
      quality: "rtc",
      rtcOffsetMs: TRUTH + 500 - Y2K,
      rtcPath: "kernel",
    });
    // Never checked by NTP this boot: RTC_UNVERIFIED_MS plus the plain read's ±500 ms.
    expect(clock.status().estimatedErrorMs).toBeCloseTo(1500, 0);
  });

  it("never anchors to an RTC with OSF set", async () => {
    dev = new FakeDevice();
    const { clock, anchors, lines } = clockOn(dev, {
      rtc: fixedRtc({ valid: false, osf: true, problem: "OSF set" }),
    });
    await clock.start();
    expect(anchors.saved.map((a) => a.source)).toEqual(["system"]);
    expect(clock.now().tq).toBe("unsynced");
    expect(lines.some((l) => /RTC not used as an anchor: OSF set/.test(String(l.msg)))).toBe(true);
  });

  it("records an ntp anchor at start-up when already synced", async () => {
    dev = new FakeDevice();
    dev.wall = TRUTH;
    dev.sync = { synced: true, estimatedErrorMs: 4 };
    const { clock, anchors } = clockOn(dev);
    await clock.start();
    expect(anchors.saved.map((a) => [a.source, a.uncertaintyMs])).toEqual([
      ["system", SYSTEM_UNCERTAINTY_MS],
      ["ntp", 4],
    ]);
    expect(clock.now()).toMatchObject({ wallMs: TRUTH, tq: "ntp" });
    expect(clock.status()).toMatchObject({
      source: "ntp",
      quality: "ntp",
      synced: true,
      estimatedErrorMs: 4,
    });
  });
});

describe("Clock sync changes and periodic anchors", () => {
  it("keeps stamping (unsynced) when the sync source cannot be read, warns once, and recovers", async () => {
    dev = new FakeDevice();
    let refusal: Error | undefined = Object.assign(
      new Error("adjtimex failed: operation not permitted (EPERM)"),
      {
        code: "EPERM",
      },
    );
    const syncSource = {
      name: "adjtimex",
      read: () => {
        if (refusal) throw refusal;
        return dev.sync;
      },
    };
    const { clock, lines } = clockOn(dev, { syncSource });
    await clock.start();
    expect(clock.now().tq).toBe("unsynced");
    expect(clock.now().tq).toBe("unsynced");
    const warnings = lines.filter(
      (l) => l.msg === "clock sync state unknown: the sync source cannot be read",
    );
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.error).toMatch(/EPERM/);
    refusal = undefined;
    dev.wall = TRUTH;
    dev.sync = { synced: true, estimatedErrorMs: 2 };
    expect(clock.now().tq).toBe("ntp");
    expect(lines.some((l) => l.msg === "clock sync source readable again")).toBe(true);
  });

  it("anchors to ntp the moment sync appears, even between ticks", async () => {
    dev = new FakeDevice();
    const { clock, anchors } = clockOn(dev);
    await clock.start();
    const early = clock.now();
    dev.advance(60_000);
    dev.wall = TRUTH;
    dev.sync = { synced: true, estimatedErrorMs: 2 };
    expect(clock.now().tq).toBe("ntp");
    expect(anchors.saved.at(-1)).toMatchObject({ source: "ntp", wallMs: TRUTH, monoNs: dev.monoNs });
    // 60 s back from an ntp anchor (±2 ms) at the crystal's stated 100 ppm: ±8 ms.
    expect(clock.publishStamp(early)).toEqual({ wallMs: TRUTH - 60_000, tq: "corrected", errMs: 8 });
  });

  it("adds an ntp anchor every anchorIntervalS of monotonic time while synced, and none while not", async () => {
    dev = new FakeDevice();
    dev.sync = { synced: true, estimatedErrorMs: 1 };
    dev.wall = TRUTH;
    const { clock, anchors } = clockOn(dev, { anchorIntervalS: 60 });
    await clock.start();
    expect(dev.ticks).toHaveLength(1);
    const ntpCount = () => anchors.saved.filter((a) => a.source === "ntp").length;
    expect(ntpCount()).toBe(1);
    dev.advance(59_000);
    dev.ticks[0]!();
    expect(ntpCount()).toBe(1);
    dev.advance(1_000);
    dev.ticks[0]!();
    expect(ntpCount()).toBe(2);
    dev.sync = { synced: false, estimatedErrorMs: undefined };
    dev.advance(600_000);
    await clock.tick();
    expect(ntpCount()).toBe(2);
    clock.stop();
    expect(dev.ticks).toHaveLength(0);
  });

  it("anchors again when sync returns after being lost", async () => {
    dev = new FakeDevice();
    dev.sync = { synced: true, estimatedErrorMs: 1 };
    const { clock, anchors } = clockOn(dev);
    await clock.start();
    dev.sync = { synced: false, estimatedErrorMs: undefined };
    dev.advance(1000);
    clock.now();
    dev.sync = { synced: true, estimatedErrorMs: 1 };
    dev.advance(1000);
    clock.now();
    expect(anchors.saved.map((a) => a.source)).toEqual(["system", "ntp", "ntp"]);
  });

  it("reports the age of the last good anchor in monotonic seconds", async () => {
    dev = new FakeDevice();
    const { clock } = clockOn(dev, { rtc: fixedRtc({}) });
    await clock.start();
    dev.advance(42_000);
    expect(clock.status().lastGoodAnchorAgeS).toBe(42);
  });
});

describe("Clock RTC drift while synced", () => {
  it("writes the system time to the RTC on the direct path when it drifted beyond maxDriftMs", async () => {
    dev = new FakeDevice();
    const model = new Ds3231Model({ nowMs: () => dev.wall, timeMs: TRUTH - 5000, osf: false });
    const rtc = ds3231Rtc(new ModelBus("/dev/i2c-1", { 104: model }), { busNumber: 1 });
    const { clock, lines, anchors } = clockOn(dev, { rtc });
    await clock.start();
    dev.wall = TRUTH;
    dev.sync = { synced: true, estimatedErrorMs: 1 };
    await clock.tick();
    expect(Math.abs(model.timeMs() - dev.wall)).toBeLessThan(1000);
    expect(clock.status().rtcOffsetMs).toBe(0);
    // The write is marked: the RTC's offset jumps there, so bounds are not carried across it.
    expect(anchors.saved.map((a) => a.source)).toEqual(["rtc", "ntp", "rtc", "rtc-set"]);
    expect(lines.some((l) => /RTC set from the system clock/.test(String(l.msg)))).toBe(true);
  });

  it("sets an RTC with OSF once synced, which clears OSF", async () => {
    dev = new FakeDevice();
    const model = new Ds3231Model({ nowMs: () => 0 });
    expect(model.osf).toBe(true);
    const rtc = ds3231Rtc(new ModelBus("/dev/i2c-1", { 104: model }), { busNumber: 1 });
    const { clock } = clockOn(dev, { rtc });
    await clock.start();
    dev.wall = TRUTH;
    dev.sync = { synced: true, estimatedErrorMs: 1 };
    await clock.tick();
    expect(model.osf).toBe(false);
    expect(Math.abs(model.timeMs() - dev.wall)).toBeLessThan(1000);
  });

  it("leaves an RTC within maxDriftMs alone", async () => {
    dev = new FakeDevice();
    const writes: number[] = [];
    const { clock } = clockOn(dev, {
      rtc: fixedRtc({ wallMs: TRUTH + 1000 }, async (ms) => void writes.push(ms)),
    });
    dev.wall = TRUTH;
    dev.sync = { synced: true, estimatedErrorMs: 1 };
    await clock.start();
    expect(writes).toEqual([]);
    expect(clock.status().rtcOffsetMs).toBe(1500);
  });

  it("on the kernel path only logs (once) that the kernel keeps the RTC in step", async () => {
    dev = new FakeDevice();
    const { clock, lines } = clockOn(dev, { rtc: fixedRtc({ wallMs: TRUTH - 10_000 }) });
    dev.wall = TRUTH;
    dev.sync = { synced: true, estimatedErrorMs: 1 };
    await clock.start();
    await clock.tick();
    await clock.tick();
    const said = lines.filter((l) => /kernel sets the RTC itself every 11 minutes/.test(String(l.msg)));
    expect(said).toHaveLength(1);
    // This fixed RTC never ticks (a plain read, its second's middle) while polling moves time on.
    expect(said[0]!.rtcOffsetMs).toBeGreaterThan(-12_000);
    expect(said[0]!.rtcOffsetMs).toBeLessThan(-9_000);
  });
});

describe("Clock and wall-clock jumps", () => {
  it("publishes and orders outstanding stamps the same when the wall clock jumps ±1 year", async () => {
    dev = new FakeDevice();
    const { clock } = clockOn(dev, { rtc: fixedRtc({}) });
    await clock.start();
    const stamps: Stamp[] = [];
    for (let i = 0; i < 5; i++) {
      stamps.push(clock.now());
      dev.advance(1000);
    }
    dev.sync = { synced: true, estimatedErrorMs: 1 };
    dev.wall = TRUTH + 5000;
    clock.now();
    const before = stamps.map((s) => clock.publishStamp(s));
    const byMono = (xs: typeof stamps) => [...xs].sort((a, b) => (a.monoNs < b.monoNs ? -1 : 1));
    for (const jump of [365 * 86_400_000, -365 * 86_400_000]) {
      dev.wall = TRUTH + 5000 + jump;
      dev.sync = { synced: false, estimatedErrorMs: undefined };
      clock.now();
      expect(stamps.map((s) => clock.publishStamp(s))).toEqual(before);
      expect(byMono(stamps)).toEqual(stamps);
    }
    expect(before.map((p) => p.wallMs)).toEqual([0, 1, 2, 3, 4].map((i) => TRUTH + i * 1000));
  });
});

describe("Clock monotonic source", () => {
  it("reads CLOCK_MONOTONIC since boot (not process.hrtime, which counts from process start)", async () => {
    const { readFileSync } = await import("node:fs");
    const { monotonicNs } = await import("../../src/clock/boot.ts");
    const uptimeS = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
    const monoS = Number(monotonicNs()) / 1e9;
    // CLOCK_MONOTONIC excludes suspend, /proc/uptime includes it: mono ≤ uptime, and both far exceed our age.
    expect(monoS).toBeLessThanOrEqual(uptimeS + 1);
    expect(monoS).toBeGreaterThan(process.uptime());
    const a = monotonicNs();
    expect(monotonicNs()).toBeGreaterThanOrEqual(a);
  });
});

describe("Clock offline discipline", () => {
  /** An RTC whose seconds follow the fake device's monotonic clock (true time = TRUTH + elapsed). */
  function tickingRtc() {
    const startNs = dev.monoNs;
    let reads = 0;
    const rtc: Rtc = {
      path: "kernel",
      description: "ticking test rtc",
      read: async () => {
        reads++;
        const elapsed = Number(dev.monoNs - startNs) / 1e6;
        return {
          wallMs: TRUTH + Math.floor(elapsed / 1000) * 1000,
          valid: true,
          osf: false,
          temperatureC: 25,
        };
      },
      close: async () => {},
    };
    return { rtc, reads: () => reads };
  }

  it("reads the RTC at its second's edge on the first tick and every anchorIntervalS, to a few ms", async () => {
    dev = new FakeDevice();
    const { rtc } = tickingRtc();
    const { clock, anchors } = clockOn(dev, { rtc, anchorIntervalS: 60, tickIntervalMs: 10_000 });
    await clock.start();
    dev.advance(10_000);
    await clock.tick();
    const edges = () => anchors.saved.filter((a) => a.source === "rtc" && a.uncertaintyMs < 500);
    expect(edges()).toHaveLength(1);
    for (let i = 0; i < 6; i++) {
      dev.advance(10_000);
      await clock.tick();
    }
    expect(edges()).toHaveLength(2);
    for (const a of edges()) {
      expect(a.uncertaintyMs).toBeLessThanOrEqual(2);
      // The RTC's second a.wallMs began at elapsed = a.wallMs − TRUTH.
      expect(Math.abs(Number(a.monoNs - 5_000_000_000n) / 1e6 - (a.wallMs - TRUTH))).toBeLessThanOrEqual(
        a.uncertaintyMs,
      );
    }
  });

  it("reads the RTC again after a stall (ticks far apart: suspend, a frozen process)", async () => {
    dev = new FakeDevice();
    const { rtc } = tickingRtc();
    const { clock, anchors } = clockOn(dev, { rtc, anchorIntervalS: 3600, tickIntervalMs: 10_000 });
    await clock.start();
    await clock.tick();
    const rtcCount = () => anchors.saved.filter((a) => a.source === "rtc").length;
    const before = rtcCount();
    dev.advance(10_000);
    await clock.tick();
    expect(rtcCount()).toBe(before);
    dev.advance(40_000);
    await clock.tick();
    expect(rtcCount()).toBe(before + 1);
  });

  it("keeps stamping when the anchor store cannot save (disk full), and says so once", async () => {
    dev = new FakeDevice();
    const full = {
      saveAnchor: () => {
        throw new Error("SQLITE_FULL: database or disk is full");
      },
      anchorsFor: () => [],
    };
    const { clock, lines } = clockOn(dev, { anchors: full as never, rtc: fixedRtc({}) });
    await clock.start();
    dev.sync = { synced: true, estimatedErrorMs: 3 };
    dev.wall = TRUTH;
    expect(clock.now().tq).toBe("ntp");
    dev.sync = { synced: false, estimatedErrorMs: undefined };
    dev.advance(1000);
    expect(clock.now()).toMatchObject({ tq: "rtc" });
    expect(lines.filter((l) => /clock anchor not saved/.test(String(l.msg)))).toHaveLength(1);
  });
});
