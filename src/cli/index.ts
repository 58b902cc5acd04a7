/**
 * The fieldrelay command line: one binary, one subcommand per job. Usage errors print one line
 * on stderr and exit 64 (EX_USAGE); each command sets its own exit code.
 */
import { Command, CommanderError } from "commander";
import { describeError, ExitCode, FieldrelayError } from "../errors/index.ts";
import { checkConfigCommand } from "./commands/check-config.ts";
import { clockCommand } from "./commands/clock.ts";
import { gpioCommand } from "./commands/gpio.ts";
import { i2cCommand } from "./commands/i2c.ts";
import { queueCommand } from "./commands/queue.ts";
import { rtcCommand } from "./commands/rtc.ts";
import { runCommand } from "./commands/run.ts";
import { sensorCommand } from "./commands/sensor.ts";
import { sinkCommand } from "./commands/sink.ts";
import { statusCommand } from "./commands/status.ts";
import { versionCommand } from "./commands/version.ts";
import { type Io, processIo } from "./io.ts";

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let exitCode: number = ExitCode.ok;
  const setExit = (code: number) => {
    exitCode = code;
  };
  const program = new Command("fieldrelay")
    .description(
      "edge runtime: sensors → timestamped readings → WAL SQLite queue → MQTT, losing nothing captured",
    )
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .showSuggestionAfterError(true)
    .helpCommand(true);
  // Usage errors become one line; commander would otherwise print them and then the help text.
  program.configureOutput({
    writeOut: (s) => io.out(s.trimEnd()),
    writeErr: (s) => io.err(s.trimEnd()),
    outputError: (s, write) => write(`fieldrelay: ${s.replace(/^error: /, "").trim()}`),
  });

  versionCommand(program, io);
  checkConfigCommand(program, io, setExit);
  runCommand(program, io, setExit);
  rtcCommand(program, io, setExit);
  clockCommand(program, io, setExit);
  statusCommand(program, io, setExit);
  queueCommand(program, io, setExit);
  sensorCommand(program, io, setExit);
  sinkCommand(program, io, setExit);
  i2cCommand(program, io, setExit);
  gpioCommand(program, io, setExit);
  for (const cmd of program.commands) cmd.exitOverride();

  if (argv.length === 0) {
    program.outputHelp({ error: true });
    return ExitCode.usage;
  }
  try {
    await program.parseAsync(argv, { from: "user" });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === "commander.helpDisplayed" ||
        error.code === "commander.help" ||
        error.code === "commander.version"
      ) {
        return ExitCode.ok;
      }
      return ExitCode.usage;
    }
    io.err(`fieldrelay: ${describeError(error)}`);
    return error instanceof FieldrelayError ? ExitCode.unavailable : ExitCode.software;
  }
}
