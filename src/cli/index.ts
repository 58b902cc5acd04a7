/**
 * The fieldrelay command line: one binary, one subcommand per job. Usage errors print one line
 * on stderr and exit 64 (EX_USAGE); each command sets its own exit code.
 */
import { Command, CommanderError } from "commander";
import { describeError, ExitCode, FieldrelayError } from "../errors/index.ts";
import { type Io, processIo } from "./io.ts";

type Register = (program: Command, io: Io, setExit: (code: number) => void) => void;

/**
 * Every subcommand, in help order: its name and how to load its module. Only the module of the
 * command being run is loaded (and so evaluated): `fieldrelay version` does not pay for SQLite,
 * MQTT and zod. Help, no arguments and unknown names load them all (help lists every command,
 * suggestions need every name). A new command is one line here.
 */
export const COMMANDS: ReadonlyArray<[string, () => Promise<Register>]> = [
  ["version", async () => (await import("./commands/version.ts")).versionCommand],
  ["check-config", async () => (await import("./commands/check-config.ts")).checkConfigCommand],
  ["run", async () => (await import("./commands/run.ts")).runCommand],
  ["rtc", async () => (await import("./commands/rtc.ts")).rtcCommand],
  ["clock", async () => (await import("./commands/clock.ts")).clockCommand],
  ["status", async () => (await import("./commands/status.ts")).statusCommand],
  ["doctor", async () => (await import("./commands/doctor.ts")).doctorCommand],
  ["queue", async () => (await import("./commands/queue.ts")).queueCommand],
  ["sensor", async () => (await import("./commands/sensor.ts")).sensorCommand],
  ["i2c", async () => (await import("./commands/i2c.ts")).i2cCommand],
  ["gpio", async () => (await import("./commands/gpio.ts")).gpioCommand],
  ["sink", async () => (await import("./commands/sink.ts")).sinkCommand],
];

/** The commands argv needs registered: the one it names, or all of them. */
export function commandsFor(argv: string[]): ReadonlyArray<[string, () => Promise<Register>]> {
  const named = COMMANDS.filter(([name]) => name === argv[0]);
  return named.length === 1 ? named : COMMANDS;
}

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

  for (const [, load] of commandsFor(argv)) (await load())(program, io, setExit);
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
