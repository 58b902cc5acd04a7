/**
 * The sensor driver registry: one line per driver. A new driver is a folder under src/sensors/
 * plus one entry here; config validation and the sampler find it by name.
 */
import type { z } from "zod";
import { ads1115 } from "./ads1115/index.ts";
import { bme280 } from "./bme280/index.ts";
import { ds18b20 } from "./ds18b20/index.ts";
import { ds3231 } from "./ds3231/index.ts";
import { gpioInput } from "./gpio_input/index.ts";
import { pulseCounter } from "./pulse_counter/index.ts";
import { sht3x } from "./sht3x/index.ts";
import { simulated } from "./simulated/index.ts";
import type { SensorDriver } from "./types.ts";

const drivers: Record<string, SensorDriver> = {
  simulated,
  ds3231,
  bme280,
  sht3x,
  ads1115,
  ds18b20,
  gpio_input: gpioInput,
  pulse_counter: pulseCounter,
};

export function driverNames(): string[] {
  return Object.keys(drivers).sort();
}

export function findDriver(name: string): SensorDriver | undefined {
  return Object.hasOwn(drivers, name) ? drivers[name] : undefined;
}

export function sensorOptionsSchema(name: string): z.ZodType | undefined {
  return findDriver(name)?.options;
}
