import { type Command, Option } from "commander";
import { DEFAULT_CONFIG_PATH } from "../config/index.ts";
import type { LogFormat } from "../log/index.ts";

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
