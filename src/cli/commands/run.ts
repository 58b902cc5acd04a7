import type { Command } from "commander";
import { ConfigError, loadConfig } from "../../config/index.ts";
import { describeError, ExitCode, FieldrelayError } from "../../errors/index.ts";
import { createLogger } from "../../log/index.ts";
import { buildInfo } from "../build-info.ts";
import type { Io } from "../io.ts";
import { type ConfigOptions, type LogOptions, withConfig, withLogFormat } from "../options.ts";

export function runCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  withLogFormat(
    withConfig(program.command("run").description("capture readings and publish them (the service)")),
  ).action(async (opts: ConfigOptions & LogOptions) => {
    let config: ReturnType<typeof loadConfig>;
    try {
      config = loadConfig({ path: opts.config });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      io.err(`fieldrelay: invalid config ${error.message}`);
      setExit(ExitCode.config);
      return;
    }
    const log = createLogger({ format: opts.logFormat, level: config.log.level });
    const stopped = waitForStop();
    // Bun installs signal handlers asynchronously; announcing start before they are in place
    // would let an early SIGTERM kill the process with the default action.
    await Bun.sleep(100);
    log.info({ ...buildInfo(), config: opts.config, device: config.device.id }, "fieldrelay starting");
    try {
      const signal = await stopped;
      log.info({ signal }, "fieldrelay stopped");
      setExit(ExitCode.ok);
    } catch (error) {
      log.fatal({ err: error }, describeError(error));
      setExit(error instanceof FieldrelayError ? ExitCode.unavailable : ExitCode.software);
    }
  });
}

function waitForStop(): Promise<string> {
  return new Promise((resolve) => {
    const stop = (signal: string) => resolve(signal);
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}
