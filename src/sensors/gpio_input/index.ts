/**
 * The gpio_input driver: the logical level of one GPIO line at each read (value 0 or 1), with
 * bias, active-low and in-kernel debounce set when the line is requested.
 */
import * as z from "zod";
import type { SensorDriver } from "../types.ts";
import { lineOptions, type OpenInputLine, openKernelInputLine } from "./line.ts";

const options = z.strictObject({ ...lineOptions, bias: lineOptions.bias.default("as-is") });

export function createGpioInput(openLine: OpenInputLine = openKernelInputLine): SensorDriver<typeof options> {
  return {
    options,
    async open(config, ctx) {
      const line = await openLine(ctx.root, config.line, config.chip, {
        direction: "input",
        bias: config.bias,
        activeLow: config.active_low,
        debounceUs: config.debounce_us,
      });
      return {
        async read() {
          return [{ values: { value: line.read() } }];
        },
        close: () => line.close(),
      };
    },
  };
}

export const gpioInput = createGpioInput();
