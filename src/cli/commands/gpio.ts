/**
 * `fieldrelay gpio info|get|set|watch`: gpioinfo / gpioget / gpioset / gpiomon for a device
 * without libgpiod tools, over the same character-device binding the runtime uses. A line is an
 * offset (on --chip, default gpiochip0) or a name ("GPIO17"). Absent chips or lines exit 69.
 */
import { Argument, type Command, Option } from "commander";
import { describeError, ExitCode, FieldrelayError } from "../../errors/index.ts";
import {
  chipPath,
  chipPaths,
  describeFlags,
  EdgeWatcher,
  GpioChip,
  GpioChipMissing,
  type LineRequest,
  type LineSettings,
  resolveLine,
} from "../../hal/gpio/index.ts";
import type { Io } from "../io.ts";

interface GpioOptions {
  chip?: string;
  root: string;
  bias: NonNullable<LineSettings["bias"]>;
  activeLow?: boolean;
}

const withLine = (cmd: Command) =>
  cmd
    .argument("<line>", 'line offset (17) or name ("GPIO17")')
    .option("--chip <chip>", "gpiochipN, N or a path (default: gpiochip0, or every chip for a line name)")
    .option("--root <dir>", "filesystem root holding dev/", process.env.FIELDRELAY_SYSTEM_ROOT ?? "/")
    .addOption(
      new Option("--bias <bias>", "bias")
        .choices(["as-is", "disable", "pull-up", "pull-down"])
        .default("as-is"),
    )
    .option("--active-low", "treat the line as active-low");

function requestLine(
  line: string,
  opts: GpioOptions,
  settings: LineSettings,
  eventBufferSize = 0,
): LineRequest {
  const where = resolveLine(line, opts.chip, opts.root);
  const chip = GpioChip.open(where.chip);
  try {
    return chip.request([where.offset], settings, { eventBufferSize });
  } finally {
    chip.close();
  }
}

export function gpioCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  const gpio = program
    .command("gpio")
    .description("inspect and drive GPIO lines (like gpioinfo/gpioget/gpioset/gpiomon)");

  const guarded =
    <A extends unknown[]>(body: (...args: A) => Promise<void> | void) =>
    async (...args: A) => {
      try {
        await body(...args);
        setExit(ExitCode.ok);
      } catch (error) {
        if (!(error instanceof FieldrelayError)) throw error;
        io.err(`fieldrelay: ${describeError(error)}`);
        setExit(ExitCode.unavailable);
      }
    };

  gpio
    .command("info")
    .description("list chips and their lines: name, direction, bias, consumer")
    .argument("[chip]", "gpiochipN or N (default: every chip)")
    .option("--root <dir>", "filesystem root holding dev/", process.env.FIELDRELAY_SYSTEM_ROOT ?? "/")
    .action(
      guarded((chip: string | undefined, opts: { root: string }) => {
        const paths = chip === undefined ? chipPaths(opts.root) : [chipPath(chip, opts.root)];
        if (paths.length === 0) throw new GpioChipMissing(`${opts.root.replace(/\/$/, "")}/dev/gpiochip*`);
        for (const path of paths) {
          const opened = GpioChip.open(path);
          try {
            const info = opened.info();
            io.out(`${info.name} [${info.label}] (${info.lines} lines)`);
            for (const line of opened.lines()) {
              const flags = describeFlags(line.flags).join(" ");
              const consumer = line.consumer ? ` "${line.consumer}"` : "";
              io.out(
                `\tline ${String(line.offset).padStart(3)}: ${JSON.stringify(line.name || "unnamed")}${consumer} ${flags}`,
              );
            }
          } finally {
            opened.close();
          }
        }
      }),
    );

  withLine(gpio.command("get").description("print a line's logical value (0 or 1)")).action(
    guarded((line: string, opts: GpioOptions) => {
      const req = requestLine(line, opts, {
        direction: "input",
        bias: opts.bias,
        activeLow: opts.activeLow ?? false,
      });
      try {
        io.out(String(req.getValues()[0]));
      } finally {
        req.close();
      }
    }),
  );

  withLine(
    gpio
      .command("set")
      .description("drive a line to 0 or 1 (released, and so may float, when the command exits)"),
  )
    .addArgument(new Argument("<value>", "0 or 1").choices(["0", "1"]))
    .action(
      guarded((line: string, value: string, opts: GpioOptions) => {
        const req = requestLine(line, opts, {
          direction: "output",
          activeLow: opts.activeLow ?? false,
          outputValues: [Number(value)],
        });
        req.close();
        io.out(`${line} = ${value}`);
      }),
    );

  withLine(gpio.command("watch").description("print edge events with kernel timestamps until interrupted"))
    .addOption(
      new Option("--edge <edge>", "edges to report").choices(["rising", "falling", "both"]).default("both"),
    )
    .option("--debounce-us <us>", "in-kernel debounce period", (v) => Number.parseInt(v, 10), 0)
    .option("--count <n>", "stop after n events", (v) => Number.parseInt(v, 10))
    .action(
      guarded(
        async (
          line: string,
          opts: GpioOptions & { edge: "rising" | "falling" | "both"; debounceUs: number; count?: number },
        ) => {
          const req = requestLine(
            line,
            opts,
            {
              direction: "input",
              edge: opts.edge,
              bias: opts.bias,
              activeLow: opts.activeLow ?? false,
              debounceUs: opts.debounceUs,
            },
            256,
          );
          let seen = 0;
          let stop: () => void = () => {};
          const stopped = new Promise<void>((resolve) => {
            stop = resolve;
          });
          const watcher = new EdgeWatcher(
            req,
            (events, lost) => {
              if (lost) io.out(JSON.stringify({ lost }));
              for (const e of events) {
                io.out(
                  JSON.stringify({
                    offset: e.offset,
                    edge: e.id === 1 ? "rising" : "falling",
                    timestamp_ns: e.timestamp_ns.toString(),
                    seqno: e.seqno,
                  }),
                );
                if (opts.count !== undefined && ++seen >= opts.count) stop();
              }
            },
            (error) => {
              io.err(`fieldrelay: ${error.message}`);
              stop();
            },
          );
          process.once("SIGINT", stop);
          process.once("SIGTERM", stop);
          await stopped;
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          await watcher.stop();
          req.close();
        },
      ),
    );
}
