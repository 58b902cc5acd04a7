import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Ds3231Model } from "../../src/clock/rtc/model.ts";
import type { SensorConfig } from "../../src/config/schema.ts";
import { ModelBus } from "../../src/hal/i2c/model-bus.ts";
import { findDriver } from "../../src/sensors/registry.ts";

const root = mkdtempSync(join(tmpdir(), "fr-ds3231s-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const base = { name: "rtc", driver: "ds3231", interval_s: 60, priority: 5, qos: 1, scale: {}, offset: {} };

describe("ds3231 sensor driver", () => {
  const driver = findDriver("ds3231")!;

  it("is registered and defaults to bus 1, address 0x68", () => {
    expect(driver).toBeDefined();
    expect(driver.options.parse({})).toEqual({ bus: 1, address: 0x68 });
    expect(() => driver.options.parse({ address: 0x80 })).toThrow();
  });

  it("publishes temperature_c and the osf flag over I2C", async () => {
    const model = new Ds3231Model({
      nowMs: () => 0,
      timeMs: Date.UTC(2026, 0, 1),
      osf: false,
      temperatureC: 31.75,
    });
    const opened: number[] = [];
    const sensor = await driver.open(
      { ...base, bus: 3, address: 0x68 } as SensorConfig & { bus: number; address: number },
      {
        root,
        random: Math.random,
        monoMs: () => 0,
        openI2c: async (bus) => {
          opened.push(bus);
          return new ModelBus(`/dev/i2c-${bus}`, { 104: model });
        },
      },
    );
    expect(opened).toEqual([3]);
    expect(await sensor.read()).toEqual([{ values: { temperature_c: 31.75, osf: false } }]);
    model.temperatureC = -4.5;
    model.batteryLoss();
    expect(await sensor.read()).toEqual([{ values: { temperature_c: -4.5, osf: true } }]);
    await sensor.close();
  });

  it("fails to open with the reason when no chip is reachable", async () => {
    await expect(
      driver.open({ ...base, bus: 1, address: 0x68 } as SensorConfig & { bus: number; address: number }, {
        root,
        random: Math.random,
        monoMs: () => 0,
      }),
    ).rejects.toThrow(/no DS3231 found: I2C bus 1 cannot be opened: .*no such adapter/);
  });
});
