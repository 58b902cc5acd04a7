/**
 * The ds18b20 driver: temperature from a DS18B20 on the kernel's 1-Wire bus (w1-gpio overlay),
 * read through sysfs (see w1.ts for the format and what counts as a bad reading). A read takes
 * ~750 ms inside the kernel (12-bit conversion); it is an async file read, so the event loop keeps
 * running meanwhile.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import * as z from "zod";
import { CrcError, DeviceError, DeviceMissingError, OutOfRangeError } from "../../hal/errors.ts";
import type { SensorDriver } from "../types.ts";
import { chooseProbe, ID_PATTERN, parseTemperatureFile, parseW1Slave, type W1Verdict } from "./w1.ts";

const ENABLE_HINT =
  "enable 1-Wire with dtoverlay=w1-gpio (data on GPIO4) and check the 4.7 kΩ pull-up to 3.3 V";

const options = z.strictObject({
  id: z
    .string()
    .regex(ID_PATTERN, 'must be a DS18B20 id like "28-0316a2799a4f" (see /sys/bus/w1/devices)')
    .optional(),
  file: z
    .enum(["w1_slave", "temperature"], { error: 'must be "w1_slave" or "temperature"' })
    .default("w1_slave"),
});

export function w1DevicesDir(root: string): string {
  return join(root, "sys", "bus", "w1", "devices");
}

/** The 1-Wire probe ids present under root (empty when the bus master is not loaded). */
export async function listProbes(root: string): Promise<string[]> {
  try {
    return (await readdir(w1DevicesDir(root))).filter((n) => ID_PATTERN.test(n)).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

export const ds18b20: SensorDriver<typeof options> = {
  options,
  async open(config, ctx) {
    const dir = w1DevicesDir(ctx.root);
    const present = await listProbes(ctx.root);
    const choice = chooseProbe(present, config.id);
    if (!choice.ok) {
      if (choice.reason === "ambiguous")
        throw new DeviceError("ds18b20", `${present.length} probes on the 1-Wire bus and no id configured`, {
          hint: `set id to one of ${present.map((p) => `"${p}"`).join(", ")} in this [[sensor]]`,
          context: { dir, present },
        });
      throw new DeviceMissingError(
        "ds18b20",
        choice.reason === "absent"
          ? `probe ${config.id} not found in ${dir}${present.length ? ` (present: ${present.join(", ")})` : ""}`
          : `no DS18B20 probe in ${dir}`,
        { hint: ENABLE_HINT, context: { dir, present } },
      );
    }
    const device = `ds18b20 ${choice.id}`;
    const path = join(dir, choice.id, config.file);
    return {
      stampAt: "midpoint", // the kernel converts for ~750 ms inside the read; the value integrates over it
      async read() {
        let text: string;
        try {
          text = await readFile(path, "utf8");
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === "ENOENT")
            throw new DeviceMissingError(device, `probe disappeared (${path} is gone)`, {
              hint: ENABLE_HINT,
            });
          // The kernel fails a `temperature` read whose CRC did not match.
          if (code === "EIO")
            throw new CrcError(device, `reading ${path} failed (EIO): bad CRC or no presence pulse`);
          throw error;
        }
        const verdict: W1Verdict =
          config.file === "w1_slave" ? parseW1Slave(text) : parseTemperatureFile(text);
        if (!verdict.ok) {
          const context = { path, content: text };
          if (verdict.reason === "crc")
            throw new CrcError(device, verdict.detail, {
              hint: "check the cable and pull-up; long unshielded runs pick up noise",
              context,
            });
          throw new OutOfRangeError(device, verdict.detail, {
            hint:
              verdict.reason === "power-on"
                ? "power the probe from 3.3 V (VDD) rather than parasite mode, or check its supply"
                : "check the probe and its wiring",
            context,
          });
        }
        return [{ values: { temperature_c: verdict.milli_c / 1000 } }];
      },
      async close() {},
    };
  },
};
