/**
 * BME280: the compensation against the datasheet's worked example and against Bosch's reference
 * C (datasheet §4.2.3, transcribed below and compiled with gcc -fwrapv) over many trimming sets
 * and raw values; the driver against the register-level Bme280Model.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { SensorConfig } from "../../src/config/schema.ts";
import { ConversionTimeoutError, OutOfRangeError, WrongChipError } from "../../src/hal/errors.ts";
import { I2cNack, ModelBus } from "../../src/hal/i2c/index.ts";
import {
  type Bme280Calibration,
  Bme280Model,
  writeBme280Calibration,
} from "../../src/hal/i2c/model/bme280.ts";
import {
  type Bme280Trimming,
  compensateHumidity,
  compensatePressure,
  compensateTemperature,
  parseRaw,
  parseTrimming,
} from "../../src/sensors/bme280/compensation.ts";
import { bme280, maxMeasurementMs } from "../../src/sensors/bme280/index.ts";
import { seededRandom } from "../../src/sensors/simulated/model.ts";
import type { SensorContext } from "../../src/sensors/types.ts";
import { GCC, missing } from "../support/tools.ts";

/** The trimming set of the datasheet's worked example (BMP280 datasheet §3.12; same T/P formulas). */
const EXAMPLE: Bme280Trimming = {
  T1: 27504,
  T2: 26435,
  T3: -1000,
  P1: 36477,
  P2: -10685,
  P3: 3024,
  P4: 2855,
  P5: 140,
  P6: -7,
  P7: 15500,
  P8: -14600,
  P9: 6000,
  H1: 75,
  H2: 362,
  H3: 0,
  H4: 324,
  H5: 50,
  H6: 30,
};

describe("BME280 compensation (datasheet integer formulas)", () => {
  it("reproduces the datasheet example: adc_T 519888 → 25.08 °C, adc_P 415148 → 100653.27 Pa", () => {
    const { t_01c, t_fine } = compensateTemperature(519888, EXAMPLE);
    expect(t_fine).toBe(128422);
    expect(t_01c).toBe(2508);
    const p = compensatePressure(415148, t_fine, EXAMPLE);
    expect(p / 256).toBeCloseTo(100653.27, 1);
  });

  it("decodes trimming bytes, including the split 12-bit signed dig_H4 and dig_H5", () => {
    const regs = new Uint8Array(256);
    const negative = { ...EXAMPLE, H4: -300, H5: -7, H6: -5, H2: -2 };
    writeBme280Calibration(regs, negative);
    expect(parseTrimming(regs.subarray(0x88, 0xa2), regs.subarray(0xe1, 0xe8))).toEqual(negative);
    writeBme280Calibration(regs, EXAMPLE);
    expect(parseTrimming(regs.subarray(0x88, 0xa2), regs.subarray(0xe1, 0xe8))).toEqual(EXAMPLE);
  });

  it("assembles 20-bit pressure/temperature and 16-bit humidity from the burst read", () => {
    expect(parseRaw(Uint8Array.of(0x65, 0x5a, 0xc0, 0x7e, 0xed, 0x00, 0x6c, 0x5a))).toEqual({
      adc_P: 0x655ac,
      adc_T: 0x7eed0,
      adc_H: 0x6c5a,
    });
  });

  it("returns 0 humidity below and 100 %RH at the clamp, never outside", () => {
    const { t_fine } = compensateTemperature(519888, EXAMPLE);
    expect(compensateHumidity(0, t_fine, EXAMPLE)).toBe(0);
    expect(compensateHumidity(0xffff, t_fine, EXAMPLE) / 1024).toBe(100);
  });
});

const REFERENCE_C = String.raw`
#include <stdio.h>
#include <stdint.h>
typedef int32_t BME280_S32_t; typedef uint32_t BME280_U32_t; typedef int64_t BME280_S64_t;
static unsigned short dig_T1, dig_P1; static short dig_T2, dig_T3, dig_P2, dig_P3, dig_P4, dig_P5, dig_P6, dig_P7, dig_P8, dig_P9;
static unsigned char dig_H1, dig_H3; static short dig_H2, dig_H4, dig_H5; static signed char dig_H6;
BME280_S32_t t_fine;
BME280_S32_t BME280_compensate_T_int32(BME280_S32_t adc_T) {
  BME280_S32_t var1, var2, T;
  var1 = ((((adc_T>>3) - ((BME280_S32_t)dig_T1<<1))) * ((BME280_S32_t)dig_T2)) >> 11;
  var2 = (((((adc_T>>4) - ((BME280_S32_t)dig_T1)) * ((adc_T>>4) - ((BME280_S32_t)dig_T1))) >> 12) * ((BME280_S32_t)dig_T3)) >> 14;
  t_fine = var1 + var2;
  T = (t_fine * 5 + 128) >> 8;
  return T;
}
BME280_U32_t BME280_compensate_P_int64(BME280_S32_t adc_P) {
  BME280_S64_t var1, var2, p;
  var1 = ((BME280_S64_t)t_fine) - 128000;
  var2 = var1 * var1 * (BME280_S64_t)dig_P6;
  var2 = var2 + ((var1*(BME280_S64_t)dig_P5)<<17);
  var2 = var2 + (((BME280_S64_t)dig_P4)<<35);
  var1 = ((var1 * var1 * (BME280_S64_t)dig_P3)>>8) + ((var1 * (BME280_S64_t)dig_P2)<<12);
  var1 = (((((BME280_S64_t)1)<<47)+var1))*((BME280_S64_t)dig_P1)>>33;
  if (var1 == 0) return 0;
  p = 1048576-adc_P;
  p = (((p<<31)-var2)*3125)/var1;
  var1 = (((BME280_S64_t)dig_P9) * (p>>13) * (p>>13)) >> 25;
  var2 = (((BME280_S64_t)dig_P8) * p) >> 19;
  p = ((p + var1 + var2) >> 8) + (((BME280_S64_t)dig_P7)<<4);
  return (BME280_U32_t)p;
}
BME280_U32_t bme280_compensate_H_int32(BME280_S32_t adc_H) {
  BME280_S32_t v_x1_u32r;
  v_x1_u32r = (t_fine - ((BME280_S32_t)76800));
  v_x1_u32r = (((((adc_H << 14) - (((BME280_S32_t)dig_H4) << 20) - (((BME280_S32_t)dig_H5) * v_x1_u32r)) +
    ((BME280_S32_t)16384)) >> 15) * (((((((v_x1_u32r * ((BME280_S32_t)dig_H6)) >> 10) * (((v_x1_u32r *
    ((BME280_S32_t)dig_H3)) >> 11) + ((BME280_S32_t)32768))) >> 10) + ((BME280_S32_t)2097152)) *
    ((BME280_S32_t)dig_H2) + 8192) >> 14));
  v_x1_u32r = (v_x1_u32r - (((((v_x1_u32r >> 15) * (v_x1_u32r >> 15)) >> 7) * ((BME280_S32_t)dig_H1)) >> 4));
  v_x1_u32r = (v_x1_u32r < 0 ? 0 : v_x1_u32r);
  v_x1_u32r = (v_x1_u32r > 419430400 ? 419430400 : v_x1_u32r);
  return (BME280_U32_t)(v_x1_u32r>>12);
}
int main(void) {
  int t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, h1, h2, h3, h4, h5, h6, at, ap, ah;
  while (scanf("%d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d",
      &t1, &t2, &t3, &p1, &p2, &p3, &p4, &p5, &p6, &p7, &p8, &p9, &h1, &h2, &h3, &h4, &h5, &h6, &at, &ap, &ah) == 21) {
    dig_T1 = t1; dig_T2 = t2; dig_T3 = t3; dig_P1 = p1; dig_P2 = p2; dig_P3 = p3; dig_P4 = p4; dig_P5 = p5;
    dig_P6 = p6; dig_P7 = p7; dig_P8 = p8; dig_P9 = p9; dig_H1 = h1; dig_H2 = h2; dig_H3 = h3; dig_H4 = h4;
    dig_H5 = h5; dig_H6 = h6;
    int T = BME280_compensate_T_int32(at);
    printf("%d %d %u %u\n", T, t_fine, BME280_compensate_P_int64(ap), bme280_compensate_H_int32(ah));
  }
  return 0;
}
`;

const skipC = missing(GCC);

describe.skipIf(skipC)("BME280 compensation against Bosch's reference C (gcc)", () => {
  const dir = mkdtempSync(join(tmpdir(), "fr-bme280-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("agrees bit for bit on 2000 trimming sets and raw values, typical and extreme", () => {
    writeFileSync(join(dir, "ref.c"), REFERENCE_C);
    execFileSync("gcc", ["-O1", "-fwrapv", "-o", join(dir, "ref"), join(dir, "ref.c")]);
    const random = seededRandom(280);
    const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
    const cases: Array<{ c: Bme280Trimming; raw: [number, number, number] }> = [];
    for (let i = 0; i < 2000; i++) {
      // Half from the ranges real parts ship with, half anywhere the registers allow.
      const typical = i % 2 === 0;
      const c: Bme280Trimming = typical
        ? {
            T1: int(26000, 29000),
            T2: int(25000, 27500),
            T3: int(-1000, 50),
            P1: int(35000, 39000),
            P2: int(-10800, -10400),
            P3: int(2900, 3300),
            P4: int(2000, 9000),
            P5: int(-200, 200),
            P6: int(-10, -5),
            P7: int(9000, 16000),
            P8: int(-15000, -10000),
            P9: int(4000, 6500),
            H1: int(60, 100),
            H2: int(340, 380),
            H3: int(0, 10),
            H4: int(280, 360),
            H5: int(0, 60),
            H6: int(20, 40),
          }
        : {
            T1: int(0, 65535),
            T2: int(-32768, 32767),
            T3: int(-32768, 32767),
            P1: int(1, 65535),
            P2: int(-32768, 32767),
            P3: int(-32768, 32767),
            P4: int(-32768, 32767),
            P5: int(-32768, 32767),
            P6: int(-32768, 32767),
            P7: int(-32768, 32767),
            P8: int(-32768, 32767),
            P9: int(-32768, 32767),
            H1: int(0, 255),
            H2: int(-32768, 32767),
            H3: int(0, 255),
            H4: int(-2048, 2047),
            H5: int(-2048, 2047),
            H6: int(-128, 127),
          };
      const raw: [number, number, number] = typical
        ? [int(400000, 600000), int(250000, 450000), int(15000, 45000)]
        : [int(0, 0xfffff), int(0, 0xfffff), int(0, 0xffff)];
      cases.push({ c, raw });
    }
    const input = cases
      .map(({ c, raw }) =>
        [
          c.T1,
          c.T2,
          c.T3,
          c.P1,
          c.P2,
          c.P3,
          c.P4,
          c.P5,
          c.P6,
          c.P7,
          c.P8,
          c.P9,
          c.H1,
          c.H2,
          c.H3,
          c.H4,
          c.H5,
          c.H6,
          ...raw,
        ].join(" "),
      )
      .join("\n");
    const expected = execFileSync(join(dir, "ref"), { input, encoding: "utf8" }).trim().split("\n");
    expect(expected).toHaveLength(cases.length);
    const actual = cases.map(({ c, raw: [adcT, adcP, adcH] }) => {
      const { t_01c, t_fine } = compensateTemperature(adcT, c);
      return `${t_01c} ${t_fine} ${compensatePressure(adcP, t_fine, c)} ${compensateHumidity(adcH, t_fine, c)}`;
    });
    const mismatches = actual.flatMap((line, i) =>
      line === expected[i] ? [] : [{ i, line, expected: expected[i], case: cases[i] }],
    );
    expect(mismatches.slice(0, 3)).toEqual([]);
  });
});

/** A context whose sleep only advances a fake clock, so the tests never wait. */
function fakeContext(bus: ModelBus): SensorContext & { slept: number[] } {
  const slept: number[] = [];
  return {
    root: "/nonexistent",
    random: () => 0.5,
    monoMs: () => 0,
    openI2c: async () => bus,
    sleep: async (ms) => {
      slept.push(ms);
    },
    slept,
  };
}

function sensorConfig(extra: Record<string, unknown> = {}) {
  const options = bme280.options.parse(extra);
  return {
    name: "air",
    driver: "bme280",
    interval_s: 10,
    priority: 5,
    qos: 1,
    scale: {},
    offset: {},
    ...options,
  } as SensorConfig & typeof options;
}

const CALIBRATION: Bme280Calibration = EXAMPLE;
const model = (extra: Partial<ConstructorParameters<typeof Bme280Model>[0]> = {}) =>
  new Bme280Model({ calibration: CALIBRATION, adc_T: 519888, adc_P: 415148, adc_H: 30000, ...extra });

describe("bme280 driver against the register model", () => {
  it("validates its options with the chip's defaults: bus 1, address 0x76, oversampling x1", () => {
    expect(bme280.options.parse({})).toEqual({
      bus: 1,
      address: 0x76,
      oversampling_temperature: 1,
      oversampling_pressure: 1,
      oversampling_humidity: 1,
    });
    expect(bme280.options.safeParse({ address: 0x48 }).success).toBe(false);
    expect(bme280.options.safeParse({ oversampling_pressure: 3 }).success).toBe(false);
  });

  it("reads one forced-mode measurement: ctrl_hum before ctrl_meas, waits, burst-reads 0xF7–0xFE", async () => {
    const chip = model();
    const bus = new ModelBus("/dev/i2c-1", { 118: chip });
    const ctx = fakeContext(bus);
    const sensor = await bme280.open(sensorConfig({ oversampling_humidity: 2 }), ctx);
    bus.log.length = 0;
    const [sample] = await sensor.read();
    const { t_fine } = compensateTemperature(519888, EXAMPLE);
    expect(sample!.values).toEqual({
      temperature_c: 25.08,
      pressure_hpa: compensatePressure(415148, t_fine, EXAMPLE) / 256 / 100,
      humidity_pct: compensateHumidity(30000, t_fine, EXAMPLE) / 1024,
    });
    expect(sample!.values.pressure_hpa).toBeCloseTo(1006.53, 2);
    expect(bus.log).toEqual([
      { address: 0x76, write: [0xf2, 0x02], readLength: 0 },
      { address: 0x76, write: [0xf4, (1 << 5) | (1 << 2) | 1], readLength: 0 },
      { address: 0x76, write: [0xf3], readLength: 1 },
      { address: 0x76, write: [0xf3], readLength: 1 },
      { address: 0x76, write: [0xf7], readLength: 8 },
    ]);
    expect(ctx.slept[0]).toBe(Math.ceil(maxMeasurementMs(1, 1, 2)));
    expect(chip.measurements).toBe(1);
    await sensor.close();
  });

  it("omits a channel whose oversampling is 0 (skipped)", async () => {
    const bus = new ModelBus("/dev/i2c-1", { 118: model() });
    const sensor = await bme280.open(sensorConfig({ oversampling_humidity: 0 }), fakeContext(bus));
    const [sample] = await sensor.read();
    expect(Object.keys(sample!.values).sort()).toEqual(["pressure_hpa", "temperature_c"]);
  });

  it("refuses a chip with another id (a BMP280 answers 0x58)", async () => {
    const bus = new ModelBus("/dev/i2c-1", { 118: model({ chipId: 0x58 }) });
    const error = await bme280.open(sensorConfig(), fakeContext(bus)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WrongChipError);
    expect((error as WrongChipError).describe()).toBe(
      "bme280 on i2c-1 at 0x76: chip id is 0x58, expected 0x60 — this is a BMP280 (no humidity); it is not supported by the bme280 driver",
    );
  });

  it("reports an absent chip as a NACK at its address", async () => {
    const error = await bme280
      .open(sensorConfig({ address: 0x77 }), fakeContext(new ModelBus()))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(I2cNack);
    expect((error as Error).message).toContain("0x77");
  });

  it("reports a NACK in the middle of a read (chip unplugged after open) as I2cNack, not data", async () => {
    const bus = new ModelBus("/dev/i2c-1", { 118: model() });
    const sensor = await bme280.open(sensorConfig(), fakeContext(bus));
    bus.detach(0x76);
    await expect(sensor.read()).rejects.toBeInstanceOf(I2cNack);
  });

  it("gives up on a conversion that never finishes with ConversionTimeoutError", async () => {
    const chip = model();
    chip.stuck = true;
    const bus = new ModelBus("/dev/i2c-1", { 118: chip });
    const ctx = fakeContext(bus);
    const sensor = await bme280.open(sensorConfig(), ctx);
    await expect(sensor.read()).rejects.toBeInstanceOf(ConversionTimeoutError);
    expect(ctx.slept.length).toBe(11); // the measurement time, then 10 status polls
  });

  it("treats the 0x80000 'no result' value and impossible temperatures as OutOfRangeError", async () => {
    const chip = model({ adc_T: 0x80000 });
    const sensor = await bme280.open(sensorConfig(), fakeContext(new ModelBus("/dev/i2c-1", { 118: chip })));
    await expect(sensor.read()).rejects.toThrow(/temperature reads 0x80000/);
    chip.adc_T = 0xfffff; // far above 85 °C with this trimming
    await expect(sensor.read()).rejects.toBeInstanceOf(OutOfRangeError);
  });
});
