import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CrcError, DeviceError, DeviceMissingError, OutOfRangeError } from "../../src/hal/errors.ts";
import { ds18b20 } from "../../src/sensors/ds18b20/index.ts";
import { chooseProbe, dallasCrc8, parseTemperatureFile, parseW1Slave } from "../../src/sensors/ds18b20/w1.ts";
import { fakeContext, sensorConfig } from "../models/context.ts";
import { removeProbe, scratchpad, w1SlaveText, writeProbe } from "../models/w1.ts";

const roots: string[] = [];
const newRoot = () => {
  const root = mkdtempSync(join(tmpdir(), "fr-w1-"));
  roots.push(root);
  return root;
};
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

const ID = "28-0316a2799a4f";
const OTHER = "28-00000a1b2c3d";

describe("w1_therm output parsing", () => {
  it("computes the Dallas CRC-8 of a real scratchpad (72 01 4b 46 7f ff 0e 10 → 57)", () => {
    expect(dallasCrc8([0x72, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0e, 0x10])).toBe(0x57);
  });

  it("reads t= from a w1_slave whose CRC the kernel and we both accept", () => {
    expect(
      parseW1Slave("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"),
    ).toEqual({ ok: true, milli_c: 23125 });
    expect(parseW1Slave(w1SlaveText(-10125))).toEqual({ ok: true, milli_c: -10125 });
  });

  it("rejects a NO verdict, a scratchpad whose CRC does not match, all zeros and the 85 °C power-on value", () => {
    expect(parseW1Slave(w1SlaveText(21000, { corrupt: true }))).toMatchObject({ ok: false, reason: "crc" });
    // The kernel says YES but the bytes do not check out: trust the bytes.
    const lying = w1SlaveText(21000, { corrupt: true }).replace(" NO", " YES");
    expect(parseW1Slave(lying)).toMatchObject({ ok: false, reason: "crc" });
    expect(parseW1Slave(w1SlaveText(0, { bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0] }))).toMatchObject({
      ok: false,
      reason: "zero",
    });
    expect(parseW1Slave(w1SlaveText(85000))).toMatchObject({ ok: false, reason: "power-on" });
    expect(parseW1Slave(w1SlaveText(127000))).toMatchObject({ ok: false, reason: "range" });
    expect(parseW1Slave("garbage")).toMatchObject({ ok: false, reason: "format" });
  });

  it("parses the temperature file and judges it the same way", () => {
    expect(parseTemperatureFile("19500\n")).toEqual({ ok: true, milli_c: 19500 });
    expect(parseTemperatureFile("85000\n")).toMatchObject({ ok: false, reason: "power-on" });
    expect(parseTemperatureFile("\n")).toMatchObject({ ok: false, reason: "format" });
  });

  it("chooses the configured probe, or the only one present, and refuses to guess among several", () => {
    expect(chooseProbe([ID, "w1_bus_master1"], undefined)).toEqual({ ok: true, id: ID });
    expect(chooseProbe([ID, OTHER], undefined)).toEqual({ ok: false, reason: "ambiguous" });
    expect(chooseProbe([ID, OTHER], OTHER)).toEqual({ ok: true, id: OTHER });
    expect(chooseProbe([ID], OTHER)).toEqual({ ok: false, reason: "absent" });
    expect(chooseProbe(["w1_bus_master1"], undefined)).toEqual({ ok: false, reason: "none" });
  });

  it("builds test scratchpads the way the chip does (1/16 °C per LSB)", () => {
    expect(scratchpad(23125).slice(0, 2)).toEqual([0x72, 0x01]);
  });
});

describe("ds18b20 driver over a sysfs tree", () => {
  it("reads the only probe when no id is configured", async () => {
    const root = newRoot();
    writeProbe(root, ID, 21375);
    mkdirSync(join(root, "sys/bus/w1/devices/w1_bus_master1"));
    const sensor = await ds18b20.open(sensorConfig(ds18b20, "probe"), fakeContext({ root }));
    expect(await sensor.read()).toEqual([{ values: { temperature_c: 21.375 } }]);
  });

  it("reads the temperature file when configured", async () => {
    const root = newRoot();
    writeProbe(root, ID, -5250);
    const sensor = await ds18b20.open(
      sensorConfig(ds18b20, "probe", { file: "temperature" }),
      fakeContext({ root }),
    );
    expect(await sensor.read()).toEqual([{ values: { temperature_c: -5.25 } }]);
  });

  it("needs an id when several probes are present, and lists them in the hint", async () => {
    const root = newRoot();
    writeProbe(root, ID, 20000);
    writeProbe(root, OTHER, 22000);
    const error = await ds18b20
      .open(sensorConfig(ds18b20, "probe"), fakeContext({ root }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeviceError);
    expect((error as DeviceError).hint).toBe(`set id to one of "${OTHER}", "${ID}" in this [[sensor]]`);
    const sensor = await ds18b20.open(sensorConfig(ds18b20, "probe", { id: OTHER }), fakeContext({ root }));
    expect(await sensor.read()).toEqual([{ values: { temperature_c: 22 } }]);
  });

  it("says how to enable 1-Wire when there is no probe (or no w1 bus at all)", async () => {
    const root = newRoot();
    const error = await ds18b20
      .open(sensorConfig(ds18b20, "probe"), fakeContext({ root }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeviceMissingError);
    expect((error as DeviceMissingError).describe()).toBe(
      `ds18b20: no DS18B20 probe in ${root}/sys/bus/w1/devices — enable 1-Wire with dtoverlay=w1-gpio (data on GPIO4) and check the 4.7 kΩ pull-up to 3.3 V`,
    );
  });

  it("turns CRC failures, the power-on value and a vanished probe into typed errors, never data", async () => {
    const root = newRoot();
    writeProbe(root, ID, 20000, { corrupt: true });
    const sensor = await ds18b20.open(sensorConfig(ds18b20, "probe", { id: ID }), fakeContext({ root }));
    await expect(sensor.read()).rejects.toBeInstanceOf(CrcError);
    writeProbe(root, ID, 85000);
    await expect(sensor.read()).rejects.toThrow(OutOfRangeError);
    await expect(sensor.read()).rejects.toThrow(/85 °C is the power-on value/);
    writeProbe(root, ID, 19000);
    expect(await sensor.read()).toEqual([{ values: { temperature_c: 19 } }]);
    removeProbe(root, ID);
    await expect(sensor.read()).rejects.toBeInstanceOf(DeviceMissingError);
  });

  it("refuses an id that is not a DS18B20 id in the options", () => {
    expect(ds18b20.options.safeParse({ id: "10-000802b4c7a1" }).success).toBe(false);
    expect(ds18b20.options.parse({})).toEqual({ file: "w1_slave" });
  });
});
