/**
 * The sht3x driver: temperature and relative humidity from a Sensirion SHT30/31/35 in
 * single-shot mode with clock stretching disabled (so a slow conversion can never hold the bus:
 * the chip NACKs a read until it is done). Each read sends the measurement command, waits the
 * datasheet maximum, and reads 6 bytes whose CRCs must match — a CRC failure is an error, never
 * data.
 */
import * as z from "zod";
import { CrcError, OutOfRangeError } from "../../hal/errors.ts";
import { hex2, I2cNack, leaseI2cBus, SmbusDevice } from "../../hal/i2c/index.ts";
import type { SensorDriver } from "../types.ts";
import {
  humidityPct,
  MEASUREMENT_MS,
  parseReadout,
  SINGLE_SHOT_NO_STRETCH,
  temperatureC,
} from "./protocol.ts";

/** Extra read attempts (2 ms apart) while the chip still NACKs after the datasheet maximum. */
const NOT_READY_RETRIES = 3;
const RETRY_MS = 2;

const options = z.strictObject({
  bus: z.int().min(0).max(255).default(1),
  address: z
    .union([z.literal(0x44), z.literal(0x45)], { error: "must be 0x44 (68) or 0x45 (69)" })
    .default(0x44),
  repeatability: z
    .enum(["high", "medium", "low"], { error: 'must be "high", "medium" or "low"' })
    .default("high"),
});

export const sht3x: SensorDriver<typeof options> = {
  options,
  async open(config, ctx) {
    const sleep = ctx.sleep ?? ((ms: number) => Bun.sleep(ms));
    const lease = await leaseI2cBus(config.bus, { root: ctx.root, open: ctx.openI2c });
    const chip = new SmbusDevice(lease.bus, config.address);
    const device = `sht3x on i2c-${config.bus} at ${hex2(config.address)}`;
    const command = SINGLE_SHOT_NO_STRETCH[config.repeatability];
    return {
      stampAt: "midpoint", // single-shot measurement inside read()
      async read() {
        await chip.write(Uint8Array.of(command >> 8, command & 0xff));
        await sleep(MEASUREMENT_MS[config.repeatability]);
        let data: Uint8Array | undefined;
        for (let attempt = 0; data === undefined; attempt++) {
          try {
            data = await chip.read(6);
          } catch (error) {
            // Without clock stretching a NACK right after the command means "not done yet".
            if (!(error instanceof I2cNack) || attempt >= NOT_READY_RETRIES) throw error;
            await sleep(RETRY_MS);
          }
        }
        const { rawT, rawRH, bad } = parseReadout(data);
        if (bad)
          throw new CrcError(
            device,
            `CRC mismatch on the ${bad} word (${Buffer.from(data).toString("hex")})`,
            {
              hint: "noise or a long cable on SDA/SCL; check the pull-ups and cable length",
            },
          );
        const temperature_c = temperatureC(rawT);
        if (temperature_c < -40 || temperature_c > 125)
          throw new OutOfRangeError(
            device,
            `temperature ${temperature_c.toFixed(2)} °C is outside -40..125 °C`,
            {
              context: { rawT },
            },
          );
        return [{ values: { temperature_c, humidity_pct: humidityPct(rawRH) } }];
      },
      close: () => lease.release(),
    };
  },
};
