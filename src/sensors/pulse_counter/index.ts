/**
 * The pulse_counter driver: counts edges on one GPIO line (flow meters, rain gauges, energy
 * meters' S0 outputs) with kernel timestamps, read in a Worker so no pulse waits for the event
 * loop. Each read reports the pulses since the previous read, the events the kernel dropped
 * (lost), totals since start and the rate.
 */
import * as z from "zod";
import { lineOptions, type OpenEdgeSource, openKernelEdgeSource } from "../gpio_input/line.ts";
import type { SensorDriver } from "../types.ts";
import { PulseAccumulator } from "./accumulator.ts";

const options = z.strictObject({
  ...lineOptions,
  // A contact closing to ground against a pull-up is the common wiring: count falling edges.
  bias: lineOptions.bias.default("pull-up"),
  edge: z
    .enum(["rising", "falling", "both"], { error: 'must be "rising", "falling" or "both"' })
    .default("falling"),
  debounce_us: lineOptions.debounce_us,
});

export function createPulseCounter(
  openEdges: OpenEdgeSource = openKernelEdgeSource,
): SensorDriver<typeof options> {
  return {
    options,
    async open(config, ctx) {
      const accumulator = new PulseAccumulator(ctx.monoMs());
      const source = await openEdges(
        ctx.root,
        config.line,
        config.chip,
        {
          direction: "input",
          edge: config.edge,
          bias: config.bias,
          activeLow: config.active_low,
          debounceUs: config.debounce_us,
        },
        (events, lost) => accumulator.add(events, lost),
      );
      return {
        stampAt: "end", // counts accumulated up to the read
        async read() {
          return [{ values: { ...accumulator.take(ctx.monoMs()) } }];
        },
        close: () => source.close(),
      };
    },
  };
}

export const pulseCounter = createPulseCounter();
