/**
 * The simulated driver: a device profile's values with drift, noise and injected anomalies.
 * Anomalies go to the high-priority "events" stream with anomaly: true.
 */
import * as z from "zod";
import type { SensorDriver } from "../types.ts";
import { seededRandom, simulate } from "./model.ts";
import { type ProfileName, profileNames, profiles } from "./profiles.ts";

const options = z.strictObject({
  profile: z.enum(profileNames as [ProfileName, ...ProfileName[]]).default("sensor"),
  seed: z
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .optional(),
  events_stream: z.string().min(1).default("events"),
  events_priority: z.int().min(1).max(10).default(9),
});

export const simulated: SensorDriver<typeof options> = {
  options,
  async open(config, ctx) {
    const profile = profiles[config.profile];
    const random = config.seed === undefined ? ctx.random : seededRandom(config.seed);
    const phases = Object.fromEntries(Object.keys(profile.values).map((k) => [k, random() * 2 * Math.PI]));
    return {
      async read() {
        const { values, anomaly } = simulate(profile, phases, ctx.monoMs(), random);
        const samples = [{ values }];
        if (anomaly) {
          return [
            ...samples,
            {
              values: anomaly,
              stream: config.events_stream,
              priority: config.events_priority,
              anomaly: true,
            },
          ];
        }
        return samples;
      },
      async close() {},
    };
  },
};
