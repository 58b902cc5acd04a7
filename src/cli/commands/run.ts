import type { Command } from "commander";
import { ConfigError, loadConfig } from "../../config/index.ts";
import { describeError, ExitCode, FieldrelayError } from "../../errors/index.ts";
import { ListenerPool } from "../../http/index.ts";
import { createLogger, type Logger } from "../../log/index.ts";
import { QueueError } from "../../queue/index.ts";
import { type Runtime, startRuntime } from "../../runtime/index.ts";
import { buildInfo } from "../build-info.ts";
import type { Io } from "../io.ts";
import {
  type ConfigOptions,
  type LogOptions,
  loadConfigForCommand,
  withConfig,
  withLogFormat,
} from "../options.ts";

/**
 * `fieldrelay run`: the service. SIGTERM/SIGINT stop it in order (exit 0); SIGHUP reloads the
 * config: a valid one restarts the runtime with it, an invalid one is logged and the old kept.
 */
export function runCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  withLogFormat(
    withConfig(program.command("run").description("capture readings and publish them (the service)")),
  ).action(async (opts: ConfigOptions & LogOptions) => {
    const loaded = loadConfigForCommand(opts.config, io, setExit);
    if (!loaded) return;
    let config = loaded;
    const log = createLogger({ format: opts.logFormat, level: config.log.level });
    let wake: (signal: string) => void = () => {};
    const signals: string[] = [];
    const onSignal = (signal: string) => {
      signals.push(signal);
      wake(signal);
    };
    for (const s of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(s, () => onSignal(s));
    const nextSignal = () =>
      signals.length
        ? Promise.resolve(signals.shift()!)
        : new Promise<string>((resolve) => (wake = (s) => resolve(signals.shift() ?? s)));

    log.info({ ...buildInfo(), config: opts.config, device: config.device.id }, "fieldrelay starting");
    // The HTTP listeners live here, not in the runtime: a reload keeps them open (#12).
    const listeners = new ListenerPool();
    let runtime: Runtime;
    try {
      runtime = await startRuntime({ config, log, listeners });
    } catch (error) {
      await listeners.closeAll();
      io.err(`fieldrelay: ${describeError(error)}`);
      logFatal(log, error, describeError(error));
      setExit(
        error instanceof QueueError
          ? ExitCode.cantCreate
          : error instanceof FieldrelayError
            ? ExitCode.unavailable
            : ExitCode.software,
      );
      return;
    }
    for (;;) {
      const signal = await nextSignal();
      if (signal !== "SIGHUP") {
        log.info({ signal }, "stopping");
        await runtime.stop();
        await listeners.closeAll();
        setExit(ExitCode.ok);
        return;
      }
      try {
        const next = loadConfig({ path: opts.config });
        log.info({ config: opts.config }, "config reloaded; restarting the runtime with it");
        await runtime.stop();
        config = next;
        runtime = await startRuntime({ config, log, listeners });
        await listeners.closeUnclaimed(); // e.g. ingest.listen = "" now
      } catch (error) {
        if (error instanceof ConfigError) {
          log.error({ problems: error.problems }, "new config rejected; keeping the old one");
        } else {
          logFatal(log, error, `restart after reload failed: ${describeError(error)}`);
          await listeners.closeAll();
          setExit(ExitCode.unavailable);
          return;
        }
      }
    }
  });
}

/**
 * An operator error (a FieldrelayError: port in use, directory not writable …) is one line with
 * what, where and how to fix; its stack goes to debug. Anything else is a bug: full stack.
 */
function logFatal(log: Logger, error: unknown, message: string): void {
  if (error instanceof FieldrelayError) {
    log.fatal({ error: error.name, context: error.context }, message);
    log.debug({ err: error }, "stack of the error above");
  } else log.fatal({ err: error }, message);
}
