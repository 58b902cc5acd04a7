/**
 * The sensor driver registry: one line per driver. A new driver is a folder under src/sensors/
 * plus one entry here; config validation and the sampler find it by name.
 */
import type { z } from "zod";
import { ds3231 } from "./ds3231/index.ts";
import { simulated } from "./simulated/index.ts";
import type { SensorDriver } from "./types.ts";

const drivers: Record<string, SensorDriver> = {
  simulated,
  ds3231,
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
