import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RTC_PPM_WIDE } from "../../src/clock/bounds.ts";
import { createClock } from "../../src/clock/clock.ts";
import { Ds3231Model } from "../../src/clock/rtc/model.ts";
import { openRtc } from "../../src/clock/rtc/select.ts";
import {
  learnRtcTrust,
  RTC_AGING_PPM,
  RTC_RATE_WANDER_PPM,
  type RtcTrust,
  TRUST_RATE_MAX_AGE_MS,
  trustedOffset,
} from "../../src/clock/trust.ts";
import { readRtcTrust, removeRtcTrust, rtcTrustPath, writeRtcTrust } from "../../src/clock/trust-file.ts";
import type { Anchor, AnchorSource } from "../../src/clock/types.ts";
import { ModelBus } from "../../src/hal/i2c/model-bus.ts";
import { silentLogger } from "../../src/log/index.ts";
import { MemoryAnchors } from "../support/memory-anchors.ts";

const DAY = 86_400_000;
const T = Date.UTC(2026, 10, 1);
const S = 1_000_000_000n;
const a = (source: AnchorSource, monoS: number, wallMs: number, uncertaintyMs = 2): Anchor => ({
  bootId: "b1",
  monoNs: BigInt(monoS) * S,
  wallMs,
  source,
  uncertaintyMs,
  ppm: 2,
});

const trust: RtcTrust = {
  v: 1,
  rtc: "DS3231 at 0x68 on I2C bus 1",
  bootId: "b1",
  checkedMs: T,
  offsetMs: 1000,
  offsetErrMs: 10,
  ppm: 2,
  ppmErr: 0.1,
  ppmMs: T,
};

describe("RTC trust (pure)", () => {
  it("grows the offset from the check at the measured rate ± its uncertainty while young", () => {
    const o = trustedOffset(trust, T + 10 * DAY)!;
    const mid = 1000 + 10 * DAY * 2e-6;
    const half = 10 + 10 * DAY * (0.1 + RTC_RATE_WANDER_PPM) * 1e-6;
    expect((o.lo + o.hi) / 2).toBeCloseTo(mid, 6);
    expect((o.hi - o.lo) / 2).toBeCloseTo(half, 6);
  });

  it("never claims better than the datasheet once the rate is old, and says nothing before the check", () => {
    const age = TRUST_RATE_MAX_AGE_MS + DAY;
    const o = trustedOffset(trust, T + age)!;
    expect((o.lo + o.hi) / 2).toBeCloseTo(1000, 6);
    expect((o.hi - o.lo) / 2).toBeCloseTo(10 + age * (RTC_PPM_WIDE + RTC_AGING_PPM) * 1e-6, 6);
    expect(trustedOffset(trust, T - 1000)).toBeUndefined();
  });

  it("learns offset and rate from NTP-checked RTC reads after the last RTC write (direct path only)", () => {
    // True time = T + mono; the RTC runs +3 ppm and was 500 ms ahead at mono 0.
    const rtcAt = (s: number) => T + s * 1000 + 500 + s * 1000 * 3e-6;
    const raw = [a("ntp", 0, T, 1)];
    for (let s = 0; s <= 2 * 86_400; s += 3600) {
      raw.push(a("rtc", s, rtcAt(s)));
      raw.push(a("ntp", s + 1, T + (s + 1) * 1000, 1));
    }
    const i2c = learnRtcTrust(raw, { rtc: "x", bootId: "b1", path: "i2c" })!;
    expect(i2c.ppm).toBeCloseTo(3, 1);
    expect(i2c.ppmErr).toBeLessThan(0.2);
    expect(Math.abs(i2c.offsetMs - (500 + 2 * DAY * 3e-6))).toBeLessThanOrEqual(i2c.offsetErrMs);
    const kernel = learnRtcTrust(raw, { rtc: "x", bootId: "b1", path: "kernel" })!;
    expect(kernel.ppm).toBeUndefined();
    // Anchors before an RTC write say nothing about the RTC after it.
    const written = [...raw, a("rtc-set", 2 * 86_400 + 10, T)];
    expect(learnRtcTrust(written, { rtc: "x", bootId: "b1", path: "i2c" })).toBeUndefined();
    expect(
      learnRtcTrust(
        raw.filter((x) => x.source !== "ntp"),
        { rtc: "x", bootId: "b1", path: "i2c" },
      ),
    ).toBe(undefined);
  });
});

describe("RTC trust file", () => {
  const dir = mkdtempSync(join(tmpdir(), "fr-trust-file-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("lives next to the queue, is replaced whole (no temp file left), and is removed on demand", () => {
    const path = rtcTrustPath(join(dir, "queue.db"));
    expect(path).toBe(join(dir, "rtc-trust.json"));
    expect(readRtcTrust(path)).toEqual({});
    writeRtcTrust(path, trust);
    writeRtcTrust(path, { ...trust, offsetMs: 7 });
    expect(readRtcTrust(path).trust?.offsetMs).toBe(7);
    expect(readdirSync(dir)).toEqual(["rtc-trust.json"]);
    expect(JSON.parse(readFileSync(path, "utf8")).v).toBe(1);
    removeRtcTrust(path);
    removeRtcTrust(path);
    expect(readRtcTrust(path)).toEqual({});
  });

  it("ignores a damaged record with a reason", () => {
    const path = join(dir, "bad.json");
    writeFileSync(path, '{"v":1,"rtc":"x"');
    expect(readRtcTrust(path).problem).toMatch(/not JSON/);
    writeFileSync(path, '{"v":2}');
    expect(readRtcTrust(path).problem).toMatch(/not an RTC trust record/);
  });
});

describe("RTC trust record written by the clock (flash wear)", () => {
  const dir = mkdtempSync(join(tmpdir(), "fr-trust-clock-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("is written at the first check, then at most every 6 hours while synced, at stop, and removed when the RTC is set", async () => {
    const root = join(dir, "root");
    mkdirSync(join(root, "proc/sys/kernel/random"), { recursive: true });
    writeFileSync(join(root, "proc/sys/kernel/random/boot_id"), "c10c0000-0000-4000-8000-0000000000c1\n");
    const trustPath = join(dir, "rtc-trust.json");
    let elapsed = 0;
    const model = new Ds3231Model({ nowMs: () => elapsed * (1 + 2e-6), timeMs: T + 700, osf: false });
    const bus = new ModelBus("/dev/i2c-1", { 104: model });
    const choice = await openRtc({ mode: "i2c", root, busNumber: 1, openBus: async () => bus });
    let systemOffsetMs = 0;
    const clock = createClock({
      root,
      syncSource: { name: "test", read: () => ({ synced: true, estimatedErrorMs: 5 }) },
      anchors: new MemoryAnchors(),
      rtc: choice.rtc,
      log: silentLogger(),
      monoNs: () => 1_000_000_000n + BigInt(Math.round(elapsed * 1e6)),
      wallMs: () => T + elapsed + systemOffsetMs,
      scheduler: () => () => {},
      sleep: async (ms) => {
        elapsed += ms;
      },
      anchorIntervalS: 600,
      maxDriftMs: 2000,
      tickIntervalMs: 600_000,
      trustPath,
    });
    await clock.start();
    const versions = new Set<string>();
    const look = () => {
      if (existsSync(trustPath)) versions.add(readFileSync(trustPath, "utf8"));
    };
    for (let i = 0; i < 24 * 6; i++) {
      elapsed += 600_000;
      await clock.tick();
      look();
    }
    // A day synced, an RTC read every 10 minutes: the first check, then 6-hourly.
    expect(versions.size).toBeGreaterThanOrEqual(4);
    expect(versions.size).toBeLessThanOrEqual(5);
    clock.stop();
    look();
    expect(versions.size).toBeLessThanOrEqual(6);
    expect(readRtcTrust(trustPath).trust?.ppm).toBeCloseTo(2, 0);
    // NTP steps the system clock 3 s: the RTC is now "off" beyond max_drift_ms and gets set;
    // what the record says about its offset no longer holds.
    systemOffsetMs = 3000;
    elapsed += 600_000;
    await clock.tick();
    expect(existsSync(trustPath)).toBe(false);
  });
});
