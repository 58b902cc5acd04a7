/**
 * The ads1115 driver: voltages from a TI ADS1115 16-bit ADC in single-shot mode. For each
 * configured input, one read writes the config word (OS=1 starts the conversion), waits one
 * data-rate period, polls OS until the chip reports idle (bounded: a stuck conversion is a
 * ConversionTimeoutError), then reads the conversion register. A clipped result (input at or
 * beyond the programmed full scale) is an OutOfRangeError, never a number.
 */
import * as z from "zod";
import { ConversionTimeoutError, OutOfRangeError } from "../../hal/errors.ts";
import { hex2, leaseI2cBus, SmbusDevice } from "../../hal/i2c/index.ts";
import type { FieldValue, SensorDriver } from "../types.ts";
import {
  configWord,
  conversionMs,
  DATA_RATES_SPS,
  type DataRate,
  FULL_SCALE_V,
  type FullScale,
  fieldName,
  INPUTS,
  isClipped,
  OS,
  REG_CONFIG,
  REG_CONVERSION,
  rawFromBytes,
  volts,
} from "./config.ts";

/** Config polls after the expected conversion time before the conversion counts as stuck. */
const READY_POLLS = 5;
const READY_POLL_MS = 2;

const literals = <T extends number>(values: readonly T[], error: string) =>
  z.union(
    values.map((v) => z.literal(v)),
    { error },
  );

const options = z.strictObject({
  bus: z.int().min(0).max(255).default(1),
  address: z
    .int()
    .min(0x48, "must be 0x48..0x4B (ADDR pin)")
    .max(0x4b, "must be 0x48..0x4B (ADDR pin)")
    .default(0x48),
  inputs: z
    .array(z.enum(INPUTS, { error: `must be one of ${INPUTS.join(", ")}` }))
    .min(1)
    .default(["ain0"]),
  full_scale_v: literals(FULL_SCALE_V, `must be one of ${FULL_SCALE_V.join(", ")} (volts)`).default(2.048),
  data_rate_sps: literals(DATA_RATES_SPS, `must be one of ${DATA_RATES_SPS.join(", ")}`).default(128),
});

export const ads1115: SensorDriver<typeof options> = {
  options,
  async open(config, ctx) {
    const sleep = ctx.sleep ?? ((ms: number) => Bun.sleep(ms));
    const lease = await leaseI2cBus(config.bus, { root: ctx.root, open: ctx.openI2c });
    const chip = new SmbusDevice(lease.bus, config.address);
    const device = `ads1115 on i2c-${config.bus} at ${hex2(config.address)}`;
    const fullScale = config.full_scale_v as FullScale;
    const rate = config.data_rate_sps as DataRate;
    const waitMs = conversionMs(rate);
    const readConfig = async () => {
      const b = await chip.readBlock(REG_CONFIG, 2);
      return (b[0]! << 8) | b[1]!;
    };
    return {
      stampAt: "midpoint", // single-shot conversion inside read()
      async read() {
        const values: Record<string, FieldValue> = {};
        for (const input of config.inputs) {
          const word = configWord(input, fullScale, rate);
          await chip.writeBlock(REG_CONFIG, Uint8Array.of(word >> 8, word & 0xff));
          await sleep(waitMs);
          let polls = 0;
          while (((await readConfig()) & OS) === 0) {
            if (++polls > READY_POLLS)
              throw new ConversionTimeoutError(
                device,
                `conversion of ${input} not finished ${waitMs + READY_POLLS * READY_POLL_MS} ms after the start`,
                { hint: "the ADC is not converting; check its supply and power-cycle it" },
              );
            await sleep(READY_POLL_MS);
          }
          const b = await chip.readBlock(REG_CONVERSION, 2);
          const raw = rawFromBytes(b[0]!, b[1]!);
          if (isClipped(raw))
            throw new OutOfRangeError(
              device,
              `${input} is at or beyond the ±${fullScale} V full scale (raw ${raw})`,
              {
                hint: "choose a larger full_scale_v (never above VDD + 0.3 V at the pin)",
                context: { input, raw },
              },
            );
          values[fieldName(input)] = volts(raw, fullScale);
        }
        return [{ values }];
      },
      close: () => lease.release(),
    };
  },
};
