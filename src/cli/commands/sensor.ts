/**
 * `fieldrelay sensor read <name>`: open one configured [[sensor]], take one reading, print it as
 * JSON on stdout, close it. For checking wiring on a device without running the service. Values
 * are what the service would queue (the sensor's scale/offset applied); when any are configured,
 * `raw` holds the driver's own values beside them, for calibrating.
 */
import type { Command } from "commander";
import { describeError, ExitCode, FieldrelayError } from "../../errors/index.ts";
import { scaleValues } from "../../runtime/sampler.ts";
import { findDriver } from "../../sensors/index.ts";
import type { Io } from "../io.ts";
import { type ConfigOptions, loadConfigForCommand, withConfig } from "../options.ts";

export function sensorCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  const sensor = program.command("sensor").description("work with configured sensors");
  withConfig(
    sensor
      .command("read")
      .description("take one reading from a configured sensor and print it as JSON")
      .argument("<name>", "the [[sensor]] name"),
  ).action(async (name: string, opts: ConfigOptions) => {
    const config = loadConfigForCommand(opts.config, io, setExit);
    if (!config) return;
    const entry = config.sensor.find((s) => s.name === name);
    if (!entry) {
      const names = config.sensor.map((s) => s.name);
      io.err(
        `fieldrelay: no sensor named "${name}" in ${opts.config}${names.length ? ` (configured: ${names.join(", ")})` : " (it has no [[sensor]] entries)"}`,
      );
      setExit(ExitCode.usage);
      return;
    }
    const driver = findDriver(entry.driver);
    if (!driver) throw new Error(`driver ${entry.driver} passed validation but is not registered`);
    const started = performance.now();
    try {
      const opened = await driver.open(entry as never, {
        root: config.system.root,
        random: Math.random,
        monoMs: () => performance.now(),
      });
      try {
        const calibrated = Object.keys(entry.scale).length + Object.keys(entry.offset).length > 0;
        const samples = (await opened.read()).map((sample) => ({
          ...sample,
          values: scaleValues(sample.values, entry.scale, entry.offset),
          ...(calibrated ? { raw: sample.values } : {}),
        }));
        io.out(
          JSON.stringify({
            sensor: entry.name,
            driver: entry.driver,
            samples,
            read_ms: Math.round(performance.now() - started),
          }),
        );
        setExit(ExitCode.ok);
      } finally {
        await opened.close();
      }
    } catch (error) {
      if (!(error instanceof FieldrelayError)) throw error;
      io.err(`fieldrelay: sensor ${entry.name} (${entry.driver}): ${describeError(error)}`);
      setExit(ExitCode.unavailable);
    }
  });
}
