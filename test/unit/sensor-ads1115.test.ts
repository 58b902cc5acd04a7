import { describe, expect, it } from "vitest";
import { ConversionTimeoutError, OutOfRangeError } from "../../src/hal/errors.ts";
import { I2cNack, ModelBus } from "../../src/hal/i2c/index.ts";
import { Ads1115Model } from "../../src/hal/i2c/model/ads1115.ts";
import {
  configWord,
  conversionMs,
  fieldName,
  isClipped,
  rawFromBytes,
  volts,
} from "../../src/sensors/ads1115/config.ts";
import { ads1115 } from "../../src/sensors/ads1115/index.ts";
import { fakeContext, sensorConfig } from "../models/context.ts";

describe("ADS1115 config word and conversion codecs", () => {
  it("builds the config word bit by bit: OS, MUX, PGA, single-shot, DR, comparator off", () => {
    // AIN0-GND (100), ±2.048 V (010), single-shot, 128 SPS (100), comparator disabled (11)
    expect(configWord("ain0", 2.048, 128)).toBe(0b1_100_010_1_100_00011);
    expect(configWord("ain0-ain1", 6.144, 8)).toBe(0b1_000_000_1_000_00011);
    expect(configWord("ain3", 0.256, 860)).toBe(0b1_111_101_1_111_00011);
  });

  it("converts raw codes to volts with one LSB = full scale / 32768, signed", () => {
    expect(volts(16384, 2.048)).toBe(1.024);
    expect(volts(-32768, 4.096)).toBe(-4.096);
    expect(volts(1, 0.256)).toBeCloseTo(7.8125e-6, 10);
    expect(rawFromBytes(0xff, 0xff)).toBe(-1);
    expect(rawFromBytes(0x7f, 0xff)).toBe(32767);
  });

  it("treats the clipping codes as out of range and names fields with their unit", () => {
    expect(isClipped(0x7fff)).toBe(true);
    expect(isClipped(-0x8000)).toBe(true);
    expect(isClipped(0x7ffe)).toBe(false);
    expect(fieldName("ain0-ain1")).toBe("ain0_ain1_v");
    expect(conversionMs(128)).toBe(9);
    expect(conversionMs(8)).toBe(138);
  });
});

describe("ads1115 driver against the register model", () => {
  const setup = (options: Record<string, unknown> = {}) => {
    const chip = new Ads1115Model();
    chip.volts[4] = 1.5; // AIN0-GND
    chip.volts[5] = 0.25; // AIN1-GND
    const bus = new ModelBus("/dev/i2c-1", { 72: chip });
    const ctx = fakeContext({ bus });
    return { chip, bus, ctx, config: sensorConfig(ads1115, "adc", options) };
  };

  it("defaults to bus 1, address 0x48, AIN0, ±2.048 V, 128 SPS and refuses other settings", () => {
    expect(ads1115.options.parse({})).toEqual({
      bus: 1,
      address: 0x48,
      inputs: ["ain0"],
      full_scale_v: 2.048,
      data_rate_sps: 128,
    });
    expect(ads1115.options.safeParse({ address: 0x4c }).success).toBe(false);
    expect(ads1115.options.safeParse({ full_scale_v: 5 }).success).toBe(false);
    expect(ads1115.options.safeParse({ inputs: ["ain4"] }).success).toBe(false);
  });

  it("starts a single-shot conversion, waits one period, checks OS, then reads the conversion register", async () => {
    const { bus, ctx, config } = setup();
    const sensor = await ads1115.open(config, ctx);
    const [sample] = await sensor.read();
    expect(sample!.values.ain0_v).toBeCloseTo(1.5, 4);
    const word = configWord("ain0", 2.048, 128);
    expect(bus.log).toEqual([
      { address: 0x48, write: [0x01, word >> 8, word & 0xff], readLength: 0 },
      { address: 0x48, write: [0x01], readLength: 2 },
      { address: 0x48, write: [0x00], readLength: 2 },
    ]);
    expect(ctx.slept).toEqual([9]);
  });

  it("reads several inputs, one conversion each, with the programmed gain", async () => {
    const { chip, ctx, config } = setup({
      inputs: ["ain0", "ain1"],
      full_scale_v: 4.096,
      data_rate_sps: 860,
    });
    chip.conversionReads = 2;
    const [sample] = await (await ads1115.open(config, ctx)).read();
    expect(sample!.values.ain0_v).toBeCloseTo(1.5, 3);
    expect(sample!.values.ain1_v).toBeCloseTo(0.25, 3);
    expect(chip.conversions).toBe(2);
    expect(ctx.slept).toEqual([2, 2, 2, 2, 2, 2]);
  });

  it("gives up on a conversion that never completes with ConversionTimeoutError", async () => {
    const { chip, ctx, config } = setup();
    chip.stuck = true;
    const error = await (await ads1115.open(config, ctx)).read().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConversionTimeoutError);
    expect((error as Error).message).toBe(
      "ads1115 on i2c-1 at 0x48: conversion of ain0 not finished 19 ms after the start",
    );
  });

  it("rejects a clipped conversion (input beyond full scale) instead of reporting 2.048 V", async () => {
    const { chip, ctx, config } = setup();
    chip.volts[4] = 3.0;
    const error = await (await ads1115.open(config, ctx)).read().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutOfRangeError);
    expect((error as OutOfRangeError).hint).toMatch(/larger full_scale_v/);
  });

  it("reports a NACK in the middle of a read as I2cNack", async () => {
    const { bus, ctx, config } = setup();
    const sensor = await ads1115.open(config, ctx);
    bus.detach(0x48);
    await expect(sensor.read()).rejects.toBeInstanceOf(I2cNack);
  });
});
