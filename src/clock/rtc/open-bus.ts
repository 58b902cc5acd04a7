/**
 * How the RTC code gets an I2C bus for the direct DS3231 path: the real /dev/i2c-N (under
 * system.root) through src/hal. openRtc closes what it opens, so each call opens a fresh bus.
 */
import { openI2cBus } from "../../hal/i2c/bus.ts";
import type { I2cBus } from "../../hal/i2c/types.ts";

/** OpenI2cBus opens /dev/i2c-<busNumber> (under system.root). */
export type OpenI2cBus = (busNumber: number) => Promise<I2cBus>;

export function linuxI2cOpener(root: string): OpenI2cBus {
  return (busNumber) => openI2cBus(busNumber, { root });
}
