import { afterAll, describe, expect, it } from "vitest";
import {
  createVitalsReader,
  decodeThrottled,
  evaluateHealth,
  parseThrottled,
  thresholdsFromConfig,
} from "../../src/health/index.ts";
import { FakeRoot, fakeStatus, NOW_MONO_MS } from "../support/runtime-status.ts";

const thresholds = thresholdsFromConfig({
  queue: { max_rows: 1000, max_bytes: 1_000_000, min_free_disk_mb: 64, commit_interval_ms: 1000 },
});
const GiB = 1024 ** 3;

const flag = (
  underVoltage: boolean,
  frequencyCapped: boolean,
  throttled: boolean,
  softTemperatureLimit: boolean,
) => ({
  underVoltage,
  frequencyCapped,
  throttled,
  softTemperatureLimit,
});

describe("decodeThrottled", () => {
  it("0x0 is nothing now and nothing since boot", () => {
    expect(decodeThrottled(0)).toEqual({
      raw: 0,
      now: flag(false, false, false, false),
      sinceBoot: flag(false, false, false, false),
    });
  });
  it("0x50005 is under-voltage and throttled, now and since boot", () => {
    const t = decodeThrottled(0x50005);
    expect(t.now).toEqual(flag(true, false, true, false));
    expect(t.sinceBoot).toEqual(flag(true, false, true, false));
  });
  it("0x50000 is under-voltage and throttling that happened earlier, not now", () => {
    const t = decodeThrottled(0x50000);
    expect(t.now).toEqual(flag(false, false, false, false));
    expect(t.sinceBoot).toEqual(flag(true, false, true, false));
  });
  it("maps each of bits 0-3 and 16-19 to its own flag", () => {
    const names = ["underVoltage", "frequencyCapped", "throttled", "softTemperatureLimit"] as const;
    names.forEach((name, bit) => {
      const t = decodeThrottled(1 << bit);
      expect(
        Object.entries(t.now)
          .filter(([, v]) => v)
          .map(([k]) => k),
      ).toEqual([name]);
      const b = decodeThrottled(1 << (16 + bit));
      expect(
        Object.entries(b.sinceBoot)
          .filter(([, v]) => v)
          .map(([k]) => k),
      ).toEqual([name]);
      expect(Object.values(b.now).some(Boolean)).toBe(false);
    });
  });
  it("parses sysfs text with or without 0x and refuses garbage", () => {
    expect(parseThrottled("50005\n")?.raw).toBe(0x50005);
    expect(parseThrottled("0x50000")?.raw).toBe(0x50000);
    expect(parseThrottled("")).toBeUndefined();
    expect(parseThrottled("throttled")).toBeUndefined();
  });
});

describe("Pi vitals from the configurable root", () => {
  const roots: FakeRoot[] = [];
  afterAll(() => {
    for (const r of roots) r.cleanup();
  });
  const reader = (root: FakeRoot) => createVitalsReader({ root: root.dir, dataDir: root.dir });
  const fresh = () => {
    const r = new FakeRoot();
    roots.push(r);
    return r;
  };

  it("reads temperature (millidegrees), the throttle word, the rpi_volt alarm and disk space", () => {
    const root = fresh().pi({ tempMilliC: 61_500, throttled: "0x50005", voltAlarm: "1" });
    const v = reader(root).read();
    expect(v.socTemperatureC).toBe(61.5);
    expect(v.throttle).not.toBe("unknown");
    expect(v.throttle !== "unknown" && v.throttle.raw).toBe(0x50005);
    expect(v.underVoltageAlarm).toBe(true);
    expect(v.dataDisk).toMatchObject({ path: root.dir, totalBytes: expect.any(Number) });
    expect(v.dataDisk !== "unknown" && v.dataDisk.totalBytes).toBeGreaterThan(0);
    expect(v.rootDisk !== "unknown" && v.rootDisk.availableBytes).toBeGreaterThanOrEqual(0);
  });

  it("finds rpi_volt whichever hwmon number it has", () => {
    const root = fresh()
      .write("sys/class/hwmon/hwmon0/name", "rpi_volt\n")
      .write("sys/class/hwmon/hwmon0/in0_lcrit_alarm", "0\n");
    expect(reader(root).read().underVoltageAlarm).toBe(false);
  });

  it("reports absent files as unknown, not as errors", () => {
    const root = fresh();
    const v = createVitalsReader({ root: root.dir, dataDir: `${root.dir}/no/such/dir` }).read();
    expect(v).toMatchObject({
      socTemperatureC: "unknown",
      throttle: "unknown",
      underVoltageAlarm: "unknown",
      dataDisk: "unknown",
    });
    const report = evaluateHealth(fakeStatus(), v, NOW_MONO_MS, thresholds);
    expect(report.status).toBe("healthy");
    expect(report.checks.power?.status).toBe("unknown");
    expect(report.checks.disk?.status).toBe("unknown");
  });

  it.each([
    ["0x0", "healthy", "ok"],
    ["0x50005", "degraded", "degraded"],
    ["0x50000", "healthy", "ok"],
  ] as const)("throttle word %s makes the device %s", (throttled, overall, power) => {
    const root = fresh().pi({ throttled });
    const v = createVitalsReader({
      root: root.dir,
      dataDir: root.dir,
      statvfs: () => ({ totalBytes: 8 * GiB, availableBytes: 4 * GiB, freeBytes: 4 * GiB }),
    }).read();
    const report = evaluateHealth(fakeStatus(), v, NOW_MONO_MS, thresholds);
    expect(report.status).toBe(overall);
    expect(report.checks.power?.status).toBe(power);
    if (throttled === "0x50005") expect(report.checks.power?.reason).toContain("under-voltage, throttled");
    if (throttled === "0x50000")
      expect(report.checks.power?.reason).toContain("since boot: under-voltage, throttled");
  });
});
