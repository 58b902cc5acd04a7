import type { Command } from "commander";
import { stringify } from "smol-toml";
import { redactConfig } from "../../config/index.ts";
import { ExitCode } from "../../errors/index.ts";
import type { Io } from "../io.ts";
import { type ConfigOptions, loadConfigForCommand, withConfig } from "../options.ts";

export function checkConfigCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  withConfig(
    program
      .command("check-config")
      .description("validate the config and print the effective settings (secrets redacted)")
      .option("--json", "print the effective config as JSON instead of TOML"),
  ).action((opts: ConfigOptions & { json?: boolean }) => {
    const config = loadConfigForCommand(opts.config, io, setExit);
    if (!config) return;
    const stripped = JSON.parse(JSON.stringify(redactConfig(config))) as Record<string, unknown>;
    io.out(
      opts.json
        ? JSON.stringify(stripped, null, 2)
        : `# effective config from ${opts.config}\n${stringify(stripped)}`,
    );
    setExit(ExitCode.ok);
  });
}
