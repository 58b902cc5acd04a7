/**
 * The ds3231 sensor: the RTC's die temperature (temperature_c, 0.25 °C steps, updated by the chip
 * every 64 s) and its oscillator-stop flag (osf: true = the RTC's time is invalid). It finds the
 * chip the same way the clock does (rtc mode "auto"): through the kernel RTC class and hwmon when
 * rtc-ds1307 owns it, else directly over I2C with the runtime's bus opener.
 */
import * as z from "zod";
import { linuxI2cOpener } from "../../clock/rtc/open-bus.ts";
import { openRtc } from "../../clock/rtc/select.ts";
import { FieldrelayError } from "../../errors/index.ts";
import type { SensorDriver } from "../types.ts";

const options = z.strictObject({
  bus: z.int().min(0).max(255).default(1),
  address: z.int().min(0x03).max(0x77).default(0x68),
});

/** Ds3231SensorError: the chip cannot be found or gives no temperature. */
export class Ds3231SensorError extends FieldrelayError {}

export const ds3231: SensorDriver<typeof options> = {
  options,
  async open(config, ctx) {
    const choice = await openRtc({
      mode: "auto",
      root: ctx.root,
      busNumber: config.bus,
      address: config.address,
      openBus: ctx.openI2c ?? linuxI2cOpener(ctx.root),
    });
    const rtc = choice.rtc;
    if (!rtc)
      throw new Ds3231SensorError(`sensor ${config.name}: no DS3231 found: ${choice.reason}`, {
        hint: "check the wiring and [[sensor]] bus/address, or load dtoverlay=i2c-rtc,ds3231",
        context: { sensor: config.name, bus: config.bus, address: config.address },
      });
    return {
      async read() {
        const r = await rtc.read();
        if (r.temperatureC === undefined)
          throw new Ds3231SensorError(`sensor ${config.name}: ${rtc.description} exposes no temperature`, {
            hint: "on the kernel path the temperature comes from hwmon (CONFIG_SENSORS_… / rtc-ds1307 with hwmon)",
            context: { sensor: config.name },
          });
        return [{ values: { temperature_c: r.temperatureC, osf: r.osf } }];
      },
      close: () => rtc.close(),
    };
  },
};
