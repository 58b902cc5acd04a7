/**
 * `fieldrelay doctor [-c PATH] [--json]`: one line per check (ok / WARN / FAIL, with the fix),
 * then a summary; exit 0 all ok, 1 warnings, 2 failures. See src/doctor.
 */
import type { Command } from "commander";
import { deviceContext, formatLine, formatSummary, runDoctor } from "../../doctor/index.ts";
import type { Io } from "../io.ts";
import { type ConfigOptions, withConfig } from "../options.ts";

export function doctorCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  withConfig(
    program
      .command("doctor")
      .description("check this device against everything fieldrelay needs; say what to fix (read-only)")
      .option("--json", "print the checks as JSON"),
  ).action(async (opts: ConfigOptions & { json?: boolean }) => {
    const result = await runDoctor(deviceContext(opts.config));
    if (opts.json) io.out(JSON.stringify(result));
    else {
      for (const r of result.checks) io.out(formatLine(r));
      io.out(formatSummary(result));
    }
    setExit(result.exit);
  });
}
