import type { z } from "zod";
import type { SensorConfig } from "../config/schema.ts";
import type { I2cBus } from "../hal/i2c/types.ts";

/** A measured value: numbers carry their unit in the field name (temperature_c, pressure_hpa). */
export type FieldValue = number | string | boolean;

/**
 * Sample is what a sensor returns from one read: named values, and optionally a different
 * stream/priority (e.g. an anomaly event) than the sensor's configured ones.
 */
export interface Sample {
  values: Record<string, FieldValue>;
  stream?: string;
  priority?: number;
  anomaly?: boolean;
}

/**
 * When within a read() the quantity was measured, so the sampler stamps that moment (the clock
 * is read before and after the read):
 *   start    — read() samples at once (a GPIO level, a register that holds the latest value);
 *   midpoint — read() triggers a conversion and waits for it (DS18B20 ~750 ms, BME280, SHT3x,
 *              ADS1115 single-shot): the value integrates over the conversion, centred mid-read;
 *   end      — read() reports what accumulated up to now (pulse counts).
 */
export type StampAt = "start" | "midpoint" | "end";

/** Sensor is an opened device. read() may reject with a typed error; the sampler keeps going. */
export interface Sensor {
  /** When the measurement happens within read() (default "start"). */
  readonly stampAt?: StampAt;
  read(): Promise<Sample[]>;
  close(): Promise<void>;
}

/** What a driver gets from the runtime: the filesystem root for /dev, /sys, /proc and randomness. */
export interface SensorContext {
  /** Prefix for every /dev, /sys and /proc path ("/" on a real device). */
  root: string;
  /** Uniform [0, 1); injected so tests are repeatable. */
  random: () => number;
  /** Milliseconds of a monotonic clock; injected so tests never sleep. */
  monoMs: () => number;
  /**
   * Opens (or shares) I2C bus N. Supplied by the runtime, which owns and closes what it returns;
   * when absent a driver opens <root>/dev/i2c-N itself and closes it in Sensor.close().
   */
  openI2c?: (bus: number) => Promise<I2cBus>;
  /** Waits for a conversion; injected so tests never sleep. Defaults to a real timer. */
  sleep?: (ms: number) => Promise<void>;
}

/** SensorDriver is one registry entry: its extra [[sensor]] keys and how to open it. */
export interface SensorDriver<Options extends z.ZodType = z.ZodType> {
  options: Options;
  open(config: SensorConfig & z.output<Options>, ctx: SensorContext): Promise<Sensor>;
}
