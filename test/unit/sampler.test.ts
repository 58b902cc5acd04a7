import { describe, expect, it } from "vitest";
import type { Stamp } from "../../src/clock/types.ts";
import type { SensorConfig } from "../../src/config/index.ts";
import { silentLogger } from "../../src/log/index.ts";
import type { Reading } from "../../src/queue/types.ts";
import { Sampler, scaleValues, toReadings } from "../../src/runtime/sampler.ts";

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
