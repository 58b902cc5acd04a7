/**
 * `fieldrelay sensor read` run as a process from source, against a prepared filesystem root
 * (system.root) holding a 1-Wire sysfs tree — the same path a device takes, minus the kernel.
 */
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeProbe } from "../models/w1.ts";
import { run, Workspace } from "../support/fieldrelay.ts";

const ws = new Workspace("fr-sensor-read-");
afterAll(() => ws.cleanup());
const root = join(ws.dir, "root");
const ID = "28-0316a2799a4f";
writeProbe(root, ID, 23125);
writeProbe(root, "28-00000badc0de", 20000, { corrupt: true });

const config = ws.writeConfig({
  device: { id: "pi-1" },
  queue: { path: ws.queuePath },
  system: { root },
  sensor: [
    { name: "tank", driver: "ds18b20", id: ID },
    { name: "noisy", driver: "ds18b20", id: "28-00000badc0de" },
    { name: "air", driver: "bme280" },
    // The probe reads 0.5 °C high against a reference, and the stream reports Fahrenheit.
    {
      name: "calibrated",
      driver: "ds18b20",
      id: ID,
      scale: { temperature_c: 1.8 },
      offset: { temperature_c: 31.1 },
    },
  ],
});

describe("fieldrelay sensor read (from source)", () => {
  it("prints one DS18B20 reading from the prepared root as JSON and exits 0", async () => {
    const r = await run("source", ["sensor", "read", "tank", "--config", config]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      sensor: "tank",
      driver: "ds18b20",
      samples: [{ values: { temperature_c: 23.125 } }],
      read_ms: expect.any(Number),
    });
  });

  it("applies the sensor's scale and offset as the service would, showing the driver's raw values beside them", async () => {
    const r = await run("source", ["sensor", "read", "calibrated", "--config", config]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      samples: Array<{ values: { temperature_c: number }; raw: unknown }>;
    };
    expect(out.samples).toHaveLength(1);
    expect(out.samples[0]?.values.temperature_c).toBeCloseTo(23.125 * 1.8 + 31.1, 9);
    expect(out.samples[0]?.raw).toEqual({ temperature_c: 23.125 });
  });

  it("exits 69 with the CRC failure when the probe's scratchpad is corrupted, printing no data", async () => {
    const r = await run("source", ["sensor", "read", "noisy", "--config", config]);
    expect(r.code).toBe(69);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(
      /^fieldrelay: sensor noisy \(ds18b20\): ds18b20 28-00000badc0de: CRC check failed/,
    );
  });

  it("exits 69 naming the missing I2C adapter and how to enable it", async () => {
    const r = await run("source", ["sensor", "read", "air", "--config", config]);
    expect(r.code).toBe(69);
    expect(r.stderr.trim()).toBe(
      `fieldrelay: sensor air (bme280): ${root}/dev/i2c-1: no such adapter (ENOENT) — enable I2C with dtparam=i2c_arm=on`,
    );
  });

  it("exits 64 listing the configured sensors for an unknown name", async () => {
    const r = await run("source", ["sensor", "read", "attic", "--config", config]);
    expect(r.code).toBe(64);
    expect(r.stderr.trim()).toBe(
      `fieldrelay: no sensor named "attic" in ${config} (configured: tank, noisy, air, calibrated)`,
    );
  });
});
