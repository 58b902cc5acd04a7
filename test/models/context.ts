/** Test helpers for sensor drivers: a SensorContext that never sleeps, and a parsed [[sensor]] entry. */
import type { z } from "zod";
import type { SensorConfig } from "../../src/config/schema.ts";
import type { I2cBus } from "../../src/hal/i2c/types.ts";
import type { SensorContext, SensorDriver } from "../../src/sensors/types.ts";

export type FakeContext = SensorContext & { slept: number[]; now: number };

/** sleep() only advances `now` (monoMs) and records the wait. */
export function fakeContext(options: { bus?: I2cBus; root?: string } = {}): FakeContext {
  const ctx: FakeContext = {
    root: options.root ?? "/nonexistent",
    random: () => 0.5,
    monoMs: () => ctx.now,
    sleep: async (ms) => {
      ctx.slept.push(ms);
      ctx.now += ms;
    },
    slept: [],
    now: 0,
  };
  if (options.bus) {
    const bus = options.bus;
    ctx.openI2c = async () => bus;
  }
  return ctx;
}

/** A [[sensor]] entry as loadConfig produces it: base keys plus the driver's parsed options. */
export function sensorConfig<O extends z.ZodType>(
  driver: SensorDriver<O>,
  name: string,
  extra: Record<string, unknown> = {},
): SensorConfig & z.output<O> {
  const options = driver.options.parse(extra) as z.output<O>;
  return {
    name,
    driver: name,
    interval_s: 10,
    priority: 5,
    qos: 1,
    scale: {},
    offset: {},
    ...(options as object),
  } as SensorConfig & z.output<O>;
}
