/**
 * The bme280 driver: temperature, pressure and humidity from a Bosch BME280 in forced mode
 * (one conversion per read, the sensor sleeps in between — datasheet §3.5.1 "weather
 * monitoring"). Open checks the chip id (0x60) and reads the trimming NVM once; each read
 * writes ctrl_hum then ctrl_meas (ctrl_hum takes effect only on that write), waits the
 * datasheet's maximum measurement time, polls status.measuring, burst-reads 0xF7–0xFE in one
 * transaction (so the registers cannot change mid-read) and compensates.
 */
import * as z from "zod";
import { ConversionTimeoutError, OutOfRangeError, WrongChipError } from "../../hal/errors.ts";
import { hex2, leaseI2cBus, SmbusDevice } from "../../hal/i2c/index.ts";
import type { SensorDriver } from "../types.ts";
import {
  ADC_SKIPPED_H,
  ADC_SKIPPED_TP,
  type Bme280Measurement,
  type Bme280Raw,
  type Bme280Trimming,
  CALIB_H_LENGTH,
  CALIB_H_START,
  CALIB_TP_LENGTH,
  CALIB_TP_START,
  compensate,
  parseRaw,
  parseTrimming,
} from "./compensation.ts";

export const BME280_CHIP_ID = 0x60;
const REG_ID = 0xd0;
const REG_CTRL_HUM = 0xf2;
const REG_STATUS = 0xf3;
const REG_CTRL_MEAS = 0xf4;
const REG_DATA = 0xf7;
const STATUS_MEASURING = 0x08;
const MODE_FORCED = 0x01;
/** Status polls after the datasheet maximum before a conversion counts as stuck. */
const STATUS_POLLS = 10;
const STATUS_POLL_MS = 2;

const OVERSAMPLING = [0, 1, 2, 4, 8, 16] as const;
const oversampling = z
  .union(
    OVERSAMPLING.map((n) => z.literal(n)),
    { error: "must be 0 (skip), 1, 2, 4, 8 or 16" },
  )
  .default(1);

/** osrs_x register field for an oversampling factor (datasheet tables 20, 23, 24). */
export function osrsField(factor: number): number {
  const field = OVERSAMPLING.indexOf(factor as (typeof OVERSAMPLING)[number]);
  if (field < 0) throw new RangeError(`oversampling ${factor} is not one of ${OVERSAMPLING.join(", ")}`);
  return field;
}

/** Maximum measurement time in ms (datasheet appendix B, 9.1). */
export function maxMeasurementMs(osrsT: number, osrsP: number, osrsH: number): number {
  let ms = 1.25;
  if (osrsT) ms += 2.3 * osrsT;
  if (osrsP) ms += 2.3 * osrsP + 0.575;
  if (osrsH) ms += 2.3 * osrsH + 0.575;
  return ms;
}

const options = z.strictObject({
  bus: z.int().min(0).max(255).default(1),
  address: z
    .union([z.literal(0x76), z.literal(0x77)], { error: "must be 0x76 (118) or 0x77 (119)" })
    .default(0x76),
  oversampling_temperature: oversampling,
  oversampling_pressure: oversampling,
  oversampling_humidity: oversampling,
});

export type Bme280Options = z.output<typeof options>;

/** Check a raw block and its compensated values are a measurement the chip can produce. */
export function checkedMeasurement(
  device: string,
  raw: Bme280Raw,
  trimming: Bme280Trimming,
  enabled: { temperature: boolean; pressure: boolean; humidity: boolean },
): Partial<Bme280Measurement> & { temperature_c: number } {
  if (raw.adc_T === ADC_SKIPPED_TP)
    throw new OutOfRangeError(device, "temperature reads 0x80000 (no conversion result)", {
      hint: "oversampling_temperature must not be 0; if it is not, the chip did not convert",
    });
  if (enabled.pressure && raw.adc_P === ADC_SKIPPED_TP)
    throw new OutOfRangeError(device, "pressure reads 0x80000 (no conversion result)");
  if (enabled.humidity && raw.adc_H === ADC_SKIPPED_H)
    throw new OutOfRangeError(device, "humidity reads 0x8000 (no conversion result)");
  const m = compensate(raw, trimming);
  if (m.temperature_c < -40 || m.temperature_c > 85)
    throw new OutOfRangeError(device, `temperature ${m.temperature_c} °C is outside -40..85 °C`, {
      hint: "check the trimming data (a corrupted NVM read) or the chip",
      context: { raw },
    });
  if (enabled.pressure && (m.pressure_hpa < 300 || m.pressure_hpa > 1100))
    throw new OutOfRangeError(device, `pressure ${m.pressure_hpa} hPa is outside 300..1100 hPa`, {
      context: { raw },
    });
  return {
    temperature_c: m.temperature_c,
    ...(enabled.pressure ? { pressure_hpa: m.pressure_hpa } : {}),
    ...(enabled.humidity ? { humidity_pct: m.humidity_pct } : {}),
  };
}

export const bme280: SensorDriver<typeof options> = {
  options,
  async open(config, ctx) {
    const sleep = ctx.sleep ?? ((ms: number) => Bun.sleep(ms));
    const lease = await leaseI2cBus(config.bus, { root: ctx.root, open: ctx.openI2c });
    const chip = new SmbusDevice(lease.bus, config.address);
    const device = `bme280 on i2c-${config.bus} at ${hex2(config.address)}`;
    let trimming: Bme280Trimming;
    try {
      const id = await chip.readByte(REG_ID);
      if (id !== BME280_CHIP_ID)
        throw new WrongChipError(device, `chip id is ${hex2(id)}, expected ${hex2(BME280_CHIP_ID)}`, {
          hint:
            id === 0x58
              ? "this is a BMP280 (no humidity); it is not supported by the bme280 driver"
              : "check the address: another chip answers there",
        });
      trimming = parseTrimming(
        await chip.readBlock(CALIB_TP_START, CALIB_TP_LENGTH),
        await chip.readBlock(CALIB_H_START, CALIB_H_LENGTH),
      );
    } catch (error) {
      await lease.release();
      throw error;
    }
    const osrsT = osrsField(config.oversampling_temperature);
    const osrsP = osrsField(config.oversampling_pressure);
    const osrsH = osrsField(config.oversampling_humidity);
    const enabled = { temperature: osrsT > 0, pressure: osrsP > 0, humidity: osrsH > 0 };
    const waitMs = Math.ceil(
      maxMeasurementMs(
        config.oversampling_temperature,
        config.oversampling_pressure,
        config.oversampling_humidity,
      ),
    );
    return {
      stampAt: "midpoint", // forced mode: read() triggers one conversion and waits for it
      async read() {
        await chip.writeByte(REG_CTRL_HUM, osrsH);
        await chip.writeByte(REG_CTRL_MEAS, (osrsT << 5) | (osrsP << 2) | MODE_FORCED);
        await sleep(waitMs);
        let polls = 0;
        while ((await chip.readByte(REG_STATUS)) & STATUS_MEASURING) {
          if (++polls > STATUS_POLLS)
            throw new ConversionTimeoutError(
              device,
              `still measuring ${waitMs + polls * STATUS_POLL_MS} ms after the start`,
              {
                hint: "the chip is not converting; power-cycle it",
              },
            );
          await sleep(STATUS_POLL_MS);
        }
        const raw = parseRaw(await chip.readBlock(REG_DATA, 8));
        return [{ values: checkedMeasurement(device, raw, trimming, enabled) }];
      },
      close: () => lease.release(),
    };
  },
};
