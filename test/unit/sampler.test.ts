import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Stamp } from "../../src/clock/types.ts";
import type { SensorConfig } from "../../src/config/index.ts";
import { silentLogger } from "../../src/log/index.ts";
import type { Reading } from "../../src/queue/types.ts";
import { measurementStamp, Sampler, scaleValues, toReadings } from "../../src/runtime/sampler.ts";
import { w1DevicesDir, w1SlaveText, writeProbe } from "../models/w1.ts";

const stamp: Stamp = { bootId: "b", monoNs: 1n, wallMs: 1000, tq: "unsynced" };
const base: SensorConfig = {
  name: "s1",
  driver: "simulated",
  interval_s: 10,
  priority: 5,
  qos: 1,
  scale: {},
  offset: {},
};

describe("Sampler readings", () => {
  it("scales and offsets numeric fields only", () => {
    expect(scaleValues({ a: 2, b: "x", c: true, d: 10 }, { a: 1.5, d: 0.1 }, { a: -1 })).toEqual({
      a: 2,
      b: "x",
      c: true,
      d: 1,
    });
  });

  it("uses the sample's stream and priority over the sensor's, the sensor name as the default stream", () => {
    const readings = toReadings(
      { ...base, stream: "telemetry" },
      [{ values: { x: 1 } }, { values: { x: 9 }, stream: "events", priority: 9, anomaly: true }],
      stamp,
    );
    expect(readings).toEqual([
      { ...stamp, stream: "telemetry", priority: 5, qos: 1, values: { x: 1 } },
      { ...stamp, stream: "events", priority: 9, qos: 1, values: { x: 9 }, anomaly: true },
    ]);
    expect(toReadings(base, [{ values: { x: 1 } }], stamp)[0]!.stream).toBe("s1");
  });

  it("captures a stamped reading from a sensor on demand and counts reads", async () => {
    const captured: Reading[] = [];
    const sampler = new Sampler({
      sensors: [
        { ...base, profile: "sensor", seed: 7, events_stream: "events", events_priority: 9 } as SensorConfig,
      ],
      ctx: { root: "/", random: () => 0.5, monoMs: () => 1234 },
      capture: (r) => {
        captured.push(r);
        return { ok: true, seq: captured.length };
      },
      now: () => stamp,
      log: silentLogger(),
    });
    const readings = await sampler.sampleNow("s1");
    expect(readings.length).toBeGreaterThanOrEqual(1);
    expect(captured[0]).toMatchObject({
      bootId: "b",
      stream: "s1",
      values: { cpu_pct: expect.any(Number), temperature_c: expect.any(Number) },
    });
    expect(sampler.stats()).toEqual([
      expect.objectContaining({ name: "s1", reads: 1, failures: 0, lastSuccessAgeS: 0 }),
    ]);
    await expect(sampler.sampleNow("nope")).rejects.toThrow(/no sensor named "nope"; configured: s1/);
  });
});

describe("Sampler stamps at the moment of measurement", () => {
  it("stamps a DS18B20 read at the middle of its ~750 ms conversion, not after it", async () => {
    const root = mkdtempSync(join(tmpdir(), "fr-sampler-"));
    try {
      const id = "28-0316a2799a4f";
      writeProbe(root, id, 21_500);
      // The kernel's conversion: w1_slave answers only when the "conversion" is done (a FIFO
      // the test writes into after moving the clock 750 ms on).
      const file = join(w1DevicesDir(root), id, "w1_slave");
      rmSync(file);
      execFileSync("mkfifo", [file]);
      let monoNs = 10_000_000_000n;
      const now = (): Stamp => ({ bootId: "b", monoNs, wallMs: Number(monoNs) / 1e6, tq: "rtc" });
      const captured: Reading[] = [];
      const sampler = new Sampler({
        sensors: [{ ...base, driver: "ds18b20", id, file: "w1_slave" } as SensorConfig],
        ctx: { root, random: () => 0.5, monoMs: () => Number(monoNs) / 1e6 },
        capture: (r) => {
          captured.push(r);
          return { ok: true, seq: captured.length };
        },
        now,
        log: silentLogger(),
      });
      const reading = sampler.sampleNow("s1");
      // Wait (without blocking the event loop) until the driver has the FIFO open for reading.
      let fd: number | undefined;
      for (let tries = 0; fd === undefined; tries++) {
        try {
          fd = openSync(file, constants.O_WRONLY | constants.O_NONBLOCK);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ENXIO" || tries > 2000) throw error;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }
      monoNs += 750_000_000n;
      writeSync(fd, w1SlaveText(21_500));
      closeSync(fd);
      await reading;
      expect(captured).toHaveLength(1);
      expect(captured[0]!.values).toEqual({ temperature_c: 21.5 });
      expect(Number(captured[0]!.monoNs - 10_000_000_000n) / 1e6).toBe(375);
      expect(captured[0]!.wallMs).toBe(10_375);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("documents the moment per driver: start, midpoint of a conversion, or end of an accumulation", () => {
    const before: Stamp = { bootId: "b", monoNs: 1_000_000_000n, wallMs: 5000, tq: "ntp" };
    const end: Stamp = { bootId: "b", monoNs: 1_100_000_000n, wallMs: 5100, tq: "ntp" };
    expect(measurementStamp("start", before, () => end)).toBe(before);
    expect(measurementStamp("midpoint", before, () => end)).toEqual({
      ...before,
      monoNs: 1_050_000_000n,
      wallMs: 5050,
    });
    expect(measurementStamp("end", before, () => end)).toBe(end);
    // Across a change of boot id (cannot happen within one read, but never mix boots): the end.
    const other = { ...end, bootId: "c" };
    expect(measurementStamp("midpoint", before, () => other)).toBe(other);
  });
});
