import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  type EdgeListener,
  GpioChipMissing,
  type LineEvent,
  type LineSettings,
} from "../../src/hal/gpio/index.ts";
import { createGpioInput, gpioInput } from "../../src/sensors/gpio_input/index.ts";
import { PulseAccumulator } from "../../src/sensors/pulse_counter/accumulator.ts";
import { createPulseCounter } from "../../src/sensors/pulse_counter/index.ts";
import { fakeContext, sensorConfig } from "../models/context.ts";

const root = mkdtempSync(join(tmpdir(), "fr-gpio-drv-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const burst = (from: number, n: number, offset = 17): LineEvent[] =>
  Array.from({ length: n }, (_, i) => ({
    timestamp_ns: BigInt(from + i) * 1_000_000n,
    id: 2,
    offset,
    seqno: from + i,
    line_seqno: from + i,
  }));

describe("Pulse accumulation", () => {
  it("counts every event of a burst as a pulse and reports each interval once", () => {
    const acc = new PulseAccumulator(0);
    acc.add(burst(1, 40), 0);
    acc.add(burst(41, 10), 0);
    expect(acc.take(10_000)).toEqual({ count: 50, lost: 0, total: 50, total_lost: 0, rate_hz: 5 });
    expect(acc.take(20_000)).toEqual({ count: 0, lost: 0, total: 50, total_lost: 0, rate_hz: 0 });
  });

  it("counts seqno gaps as lost, never as pulses, per interval and in total", () => {
    const acc = new PulseAccumulator(0);
    acc.add(burst(1, 5), 0);
    acc.add(burst(9, 2), 3); // the kernel dropped 6, 7, 8
    expect(acc.take(1000)).toMatchObject({ count: 7, lost: 3, total: 7, total_lost: 3 });
    acc.add(burst(20, 1), 9);
    expect(acc.take(2000)).toMatchObject({ count: 1, lost: 9, total: 8, total_lost: 12 });
  });

  it("reports no rate for an interval of zero length", () => {
    const acc = new PulseAccumulator(5);
    acc.add(burst(1, 1), 0);
    expect(acc.take(5)).toEqual({ count: 1, lost: 0, total: 1, total_lost: 0 });
  });
});

describe("pulse_counter driver", () => {
  it("requests the line for falling edges with pull-up by default and reports pulses per read", async () => {
    let listener: EdgeListener = () => {};
    const requested: LineSettings[] = [];
    let closed = false;
    const driver = createPulseCounter(async (_root, line, _chip, settings, l) => {
      expect(line).toBe("GPIO17");
      requested.push(settings);
      listener = l;
      return {
        close: async () => {
          closed = true;
        },
      };
    });
    const ctx = fakeContext({ root });
    const sensor = await driver.open(
      sensorConfig(driver, "rain", { line: "GPIO17", debounce_us: 2000 }),
      ctx,
    );
    expect(requested).toEqual([
      { direction: "input", edge: "falling", bias: "pull-up", activeLow: false, debounceUs: 2000 },
    ]);
    listener(burst(1, 3), 0);
    listener(burst(6, 1), 2);
    ctx.now = 2000;
    expect(await sensor.read()).toEqual([
      { values: { count: 4, lost: 2, total: 4, total_lost: 2, rate_hz: 2 } },
    ]);
    await sensor.close();
    expect(closed).toBe(true);
  });

  it("validates edge and line options", () => {
    const driver = createPulseCounter();
    expect(driver.options.safeParse({ line: 17, edge: "up" }).success).toBe(false);
    expect(driver.options.safeParse({}).success).toBe(false);
    expect(driver.options.parse({ line: 4 })).toEqual({
      line: 4,
      bias: "pull-up",
      edge: "falling",
      active_low: false,
      debounce_us: 0,
    });
  });
});

describe("gpio_input driver", () => {
  it("reads the line's logical value at each read with the configured settings", async () => {
    let level = 0;
    const requested: LineSettings[] = [];
    const driver = createGpioInput(async (_root, _line, _chip, settings) => {
      requested.push(settings);
      return { read: () => level, close: async () => {} };
    });
    const sensor = await driver.open(
      sensorConfig(driver, "door", { line: 27, active_low: true, bias: "pull-up", debounce_us: 10000 }),
      fakeContext(),
    );
    expect(await sensor.read()).toEqual([{ values: { value: 0 } }]);
    level = 1;
    expect(await sensor.read()).toEqual([{ values: { value: 1 } }]);
    expect(requested).toEqual([{ direction: "input", bias: "pull-up", activeLow: true, debounceUs: 10000 }]);
  });

  it("names the missing chip when the kernel path has no gpiochip0", async () => {
    const error = await gpioInput
      .open(sensorConfig(gpioInput, "door", { line: 27 }), fakeContext({ root }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GpioChipMissing);
    expect((error as Error).message).toBe(`${root}/dev/gpiochip0: no such GPIO chip (ENOENT)`);
  });
});
