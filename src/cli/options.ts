import { type Command, Option } from "commander";
import { type Config, ConfigError, DEFAULT_CONFIG_PATH, loadConfig } from "../config/index.ts";
import { ExitCode } from "../errors/index.ts";
import type { LogFormat } from "../log/index.ts";
import type { Io } from "./io.ts";

export interface ConfigOptions {
  config: string;
}

export interface LogOptions {
  logFormat: LogFormat;
}

/** --config PATH, shared by every command that reads the config file. */
export function withConfig(cmd: Command): Command {
  return cmd.addOption(
    new Option("-c, --config <path>", "config file").default(
      process.env.FIELDRELAY_CONFIG ?? DEFAULT_CONFIG_PATH,
    ),
  );
}

/** --log-format json|pretty, for commands that log. */
export function withLogFormat(cmd: Command): Command {
  return cmd.addOption(
    new Option("--log-format <format>", "json lines (for journald) or pretty (for a terminal)")
      .choices(["json", "pretty"])
      .default("json"),
  );
}

/**
 * Loads the config for a command, or prints every problem and sets exit 78 (EX_CONFIG).
 * Returns undefined when the config is invalid; other errors (bugs) propagate.
 */
export function loadConfigForCommand(
  path: string,
  io: Io,
  setExit: (code: number) => void,
): Config | undefined {
  try {
    return loadConfig({ path });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    io.err(`fieldrelay: invalid config ${error.message}`);
    setExit(ExitCode.config);
    return undefined;
  }
}
