import { type Command, Option } from "commander";
import { stringify } from "smol-toml";
import { ConfigError } from "../../config/index.ts";
import { describeError, ExitCode, FieldrelayError } from "../../errors/index.ts";
import { createLogger } from "../../log/index.ts";
import {
  DEFAULT_SINK_CONFIG_PATH,
  loadSinkConfig,
  redactSinkConfig,
  type SinkConfig,
  startSink,
} from "../../sink/index.ts";
import { buildInfo } from "../build-info.ts";
import type { Io } from "../io.ts";
import { type LogOptions, withLogFormat } from "../options.ts";

/**
 * `fieldrelay sink`: the fleet side, on a server. Subscribes to the devices' readings and clock
 * messages and lands them in PostgreSQL exactly once (src/sink). SIGTERM/SIGINT commit what was
 * received and exit 0. `--check` validates the config and prints it (secrets redacted).
 */
export function sinkCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  withLogFormat(
    program
      .command("sink")
      .description("land the fleet's readings in PostgreSQL exactly once (runs on a server)")
      .addOption(
        new Option("-c, --config <path>", "sink config file").default(
          process.env.FIELDRELAY_SINK_CONFIG ?? DEFAULT_SINK_CONFIG_PATH,
        ),
      )
      .option("--check", "validate the config, print the effective settings and exit"),
  ).action(async (opts: { config: string; check?: boolean } & LogOptions) => {
    let config: SinkConfig;
    try {
      config = loadSinkConfig({ path: opts.config });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      io.err(`fieldrelay: invalid sink config ${error.message}`);
      setExit(ExitCode.config);
      return;
    }
    if (opts.check) {
      io.out(
        `# effective sink config from ${opts.config}\n${stringify(JSON.parse(JSON.stringify(redactSinkConfig(config))))}`,
      );
      setExit(ExitCode.ok);
      return;
    }
    const log = createLogger({ format: opts.logFormat, level: config.log.level });
    const abort = new AbortController();
    let wake: () => void = () => {};
    const stopped = new Promise<void>((resolve) => {
      wake = resolve;
    });
    for (const s of ["SIGTERM", "SIGINT"] as const)
      process.on(s, () => {
        log.info({ signal: s }, "stopping");
        abort.abort();
        wake();
      });
    log.info(
      { ...buildInfo(), config: opts.config, table: config.postgres.table },
      "fieldrelay sink starting",
    );
    try {
      const sink = await startSink({ config, log, version: buildInfo().version, abort: abort.signal });
      if (!sink) {
        setExit(ExitCode.ok);
        return;
      }
      log.info({ health: sink.healthPort }, "sink running");
      await stopped;
      await sink.stop();
      setExit(ExitCode.ok);
    } catch (error) {
      io.err(`fieldrelay: ${describeError(error)}`);
      log.fatal({ err: error }, describeError(error));
      setExit(error instanceof FieldrelayError ? ExitCode.unavailable : ExitCode.software);
    }
  });
}
