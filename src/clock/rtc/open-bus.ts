/**
 * The CLI's I2C bus opener. The real /dev/i2c-N bus (I2C_RDWR over bun:ffi) is built separately;
 * until it is wired in here, the direct path reports clearly that it is not available. The
 * kernel path (/sys/class/rtc) does not need it.
 */
import { FieldrelayError } from "../../errors/index.ts";
import type { I2cBus } from "../../hal/i2c/types.ts";

/** OpenI2cBus opens /dev/i2c-<busNumber> (under system.root). */
export type OpenI2cBus = (busNumber: number) => Promise<I2cBus>;

export const openI2cBusUnavailable: OpenI2cBus = async (busNumber) => {
  throw new FieldrelayError(`direct I2C access is not built into this binary yet (bus ${busNumber})`, {
    hint: 'load the kernel driver instead: dtoverlay=i2c-rtc,ds3231 in config.txt, then rtc.mode = "kernel" or "auto"',
    context: { bus: busNumber },
  });
};
