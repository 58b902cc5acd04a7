import { describe, expect, it } from "vitest";
import { CrcError, OutOfRangeError } from "../../src/hal/errors.ts";
import { I2cNack, ModelBus } from "../../src/hal/i2c/index.ts";
import { Sht3xModel } from "../../src/hal/i2c/model/sht3x.ts";
import { sht3x } from "../../src/sensors/sht3x/index.ts";
import { crc8, humidityPct, parseReadout, temperatureC } from "../../src/sensors/sht3x/protocol.ts";
import { fakeContext, sensorConfig } from "../models/context.ts";

describe("SHT3x protocol", () => {
  it("computes CRC-8 (poly 0x31, init 0xFF) as the datasheet's example: 0xBEEF → 0x92", () => {
    expect(crc8([0xbe, 0xef])).toBe(0x92);
    expect(crc8([0x00, 0x00])).toBe(0x81);
    expect(crc8([])).toBe(0xff);
  });

  it("converts raw words with the datasheet formulas at the ends and the middle of the range", () => {
    expect(temperatureC(0)).toBe(-45);
    expect(temperatureC(65535)).toBe(130);
    expect(temperatureC(0x6666)).toBeCloseTo(25.0, 2);
    expect(humidityPct(0)).toBe(0);
    expect(humidityPct(65535)).toBe(100);
    expect(humidityPct(0x8000)).toBeCloseTo(50.0, 2);
  });

  it("names the word whose CRC failed", () => {
    const good = [0x66, 0x66, crc8([0x66, 0x66]), 0x80, 0x00, crc8([0x80, 0x00])];
    expect(parseReadout(Uint8Array.from(good))).toEqual({ rawT: 0x6666, rawRH: 0x8000 });
    expect(parseReadout(Uint8Array.from(good.with(2, good[2]! ^ 1))).bad).toBe("temperature");
    expect(parseReadout(Uint8Array.from(good.with(4, 0x01))).bad).toBe("humidity");
  });
});

describe("sht3x driver against the command-level model", () => {
  const setup = (options: Record<string, unknown> = {}) => {
    const chip = new Sht3xModel({ rawT: 0x6666, rawRH: 0x8000 });
    const bus = new ModelBus("/dev/i2c-1", { 68: chip });
    const ctx = fakeContext({ bus });
    return { chip, bus, ctx, config: sensorConfig(sht3x, "sht", options) };
  };

  it("defaults to bus 1, address 0x44, high repeatability, and refuses other addresses", () => {
    expect(sht3x.options.parse({})).toEqual({ bus: 1, address: 0x44, repeatability: "high" });
    expect(sht3x.options.safeParse({ address: 0x40 }).success).toBe(false);
  });

  it("sends single-shot high repeatability without clock stretching (0x2400), waits 16 ms, reads 6 bytes", async () => {
    const { bus, ctx, config } = setup();
    const sensor = await sht3x.open(config, ctx);
    const [sample] = await sensor.read();
    expect(sample!.values.temperature_c).toBeCloseTo(25.0, 2);
    expect(sample!.values.humidity_pct).toBeCloseTo(50.0, 2);
    expect(bus.log).toEqual([
      { address: 0x44, write: [0x24, 0x00], readLength: 0 },
      { address: 0x44, write: [], readLength: 6 },
    ]);
    expect(ctx.slept).toEqual([16]);
  });

  it("uses 0x2416 and 5 ms for low repeatability", async () => {
    const { chip, ctx, config } = setup({ repeatability: "low" });
    await (await sht3x.open(config, ctx)).read();
    expect(chip.commands).toEqual([0x2416]);
    expect(ctx.slept).toEqual([5]);
  });

  it("retries a read the chip NACKs because it is still measuring, then gives the NACK up as I2cNack", async () => {
    const { chip, ctx, config } = setup();
    const sensor = await sht3x.open(config, ctx);
    chip.busyReads = 2;
    expect((await sensor.read())[0]!.values.temperature_c).toBeCloseTo(25.0, 2);
    expect(ctx.slept).toEqual([16, 2, 2]);
    chip.busyReads = 10;
    await expect(sensor.read()).rejects.toBeInstanceOf(I2cNack);
  });

  it("rejects a read-out with a bad CRC as CrcError, not data", async () => {
    const { chip, ctx, config } = setup();
    chip.corruptCrc = true;
    const error = await (await sht3x.open(config, ctx)).read().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CrcError);
    expect((error as CrcError).message).toMatch(
      /^sht3x on i2c-1 at 0x44: CRC mismatch on the temperature word/,
    );
  });

  it("rejects a temperature outside the chip's -40..125 °C range", async () => {
    const { chip, ctx, config } = setup();
    chip.rawT = 0; // -45 °C
    await expect((await sht3x.open(config, ctx)).read()).rejects.toBeInstanceOf(OutOfRangeError);
  });

  it("reports a chip that never answers the command as I2cNack at its address", async () => {
    const ctx = fakeContext({ bus: new ModelBus() });
    const sensor = await sht3x.open(sensorConfig(sht3x, "sht", { address: 0x45 }), ctx);
    await expect(sensor.read()).rejects.toThrow(/NACK\) at address 0x45/);
  });
});
