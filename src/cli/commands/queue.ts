import { type Command, Option } from "commander";
import { ExitCode } from "../../errors/index.ts";
import {
  type DeadLetter,
  type DeadLetterFile,
  openDeadLetterFile,
  openQueueReader,
  QueueError,
  type QueueReader,
  type StoredReading,
} from "../../queue/index.ts";
import type { Io } from "../io.ts";
import { type ConfigOptions, loadConfigForCommand, withConfig } from "../options.ts";

interface QueueCliOptions extends ConfigOptions {
  db?: string;
}

/**
 * `fieldrelay queue stats | peek | export`: read-only views of the queue database, safe while
 * `fieldrelay run` holds it open and writes (WAL readers never block the writer).
 */
export function queueCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  const queue = program
    .command("queue")
    .description("inspect the queue database (read-only, safe while running)");
  const withDb = (cmd: Command) =>
    withConfig(cmd).addOption(
      new Option("--db <path>", "queue database file (instead of queue.path from the config)"),
    );

  /** Open the reader for a subcommand, or report why not (and set the exit code). */
  const open = (opts: QueueCliOptions): QueueReader | undefined => {
    let path = opts.db;
    if (path === undefined) {
      const config = loadConfigForCommand(opts.config, io, setExit);
      if (!config) return undefined;
      path = config.queue.path;
    }
    try {
      return openQueueReader(path);
    } catch (error) {
      if (!(error instanceof QueueError)) throw error;
      io.err(`fieldrelay: ${error.describe()}`);
      setExit(error.code === "db-missing" ? ExitCode.noInput : ExitCode.dataErr);
      return undefined;
    }
  };

  withDb(queue.command("stats").description("rows, bytes, rows by priority, oldest and next seq, inflight"))
    .option("--json", "print as JSON")
    .action((opts: QueueCliOptions & { json?: boolean }) => {
      const reader = open(opts);
      if (!reader) return;
      try {
        const s = reader.stats();
        if (opts.json) {
          io.out(JSON.stringify(s, null, 2));
        } else {
          const lines = [
            `database     ${s.path} (${s.initialised ? `schema v${s.schemaVersion}` : "not initialised yet: the service has not committed its schema"})`,
            `rows         ${s.rows}`,
            `bytes        ${s.bytes}`,
            `oldest seq   ${s.oldestSeq ?? "-"}`,
            `next seq     ${s.nextSeq}`,
            `inflight     ${s.inflight}`,
            "by priority",
            ...Object.entries(s.byPriority)
              .sort(([a], [b]) => Number(b) - Number(a))
              .map(([p, c]) => `  ${p.padStart(2)}         ${c.rows} rows, ${c.bytes} bytes`),
          ];
          io.out(lines.join("\n"));
        }
        setExit(ExitCode.ok);
      } finally {
        reader.close();
      }
    });

  withDb(queue.command("peek").description("the next readings to send, in send order"))
    .addOption(new Option("-n, --number <n>", "how many").default("10"))
    .action((opts: QueueCliOptions & { number: string }) => {
      const n = Number(opts.number);
      if (!Number.isInteger(n) || n < 0) {
        io.err(`fieldrelay: -n must be a whole number ≥ 0, got "${opts.number}"`);
        setExit(ExitCode.usage);
        return;
      }
      const reader = open(opts);
      if (!reader) return;
      try {
        for (const r of reader.peek(n)) io.out(toJson(r));
        setExit(ExitCode.ok);
      } finally {
        reader.close();
      }
    });

  withDb(queue.command("export").description("every stored reading in seq order"))
    .addOption(new Option("--format <format>", "output format").choices(["ndjson"]).default("ndjson"))
    .action((opts: QueueCliOptions) => {
      const reader = open(opts);
      if (!reader) return;
      try {
        for (const r of reader.export()) io.out(toJson(r));
        setExit(ExitCode.ok);
      } finally {
        reader.close();
      }
    });

  // ---- #12: dead letters (readings the broker refused for good) ----
  const deadLetter = queue
    .command("dead-letter")
    .description("readings the broker refused for good: list, export, requeue");
  const openDead = (opts: QueueCliOptions, write: boolean): DeadLetterFile | undefined => {
    let path = opts.db;
    if (path === undefined) {
      const config = loadConfigForCommand(opts.config, io, setExit);
      if (!config) return undefined;
      path = config.queue.path;
    }
    try {
      return openDeadLetterFile(path, write);
    } catch (error) {
      if (!(error instanceof QueueError)) throw error;
      io.err(`fieldrelay: ${error.describe()}`);
      setExit(
        error.code === "db-missing"
          ? ExitCode.noInput
          : error.code === "locked"
            ? ExitCode.cantCreate
            : ExitCode.dataErr,
      );
      return undefined;
    }
  };
  withDb(deadLetter.command("list").description("seq, stream, priority and reason of each dead letter"))
    .option("--json", "one JSON object per line")
    .action((opts: QueueCliOptions & { json?: boolean }) => {
      const file = openDead(opts, false);
      if (!file) return;
      try {
        let n = 0;
        for (const d of file.list()) {
          n++;
          io.out(
            opts.json
              ? deadJson(d)
              : `${String(d.seq).padStart(8)}  p${d.priority}  ${JSON.stringify(d.stream)}  ${new Date(d.deadAtMs).toISOString()}  ${d.reason}`,
          );
        }
        if (!opts.json && n === 0) io.out("no dead letters");
        setExit(ExitCode.ok);
      } finally {
        file.close();
      }
    });
  withDb(deadLetter.command("export").description("every dead letter with its values, NDJSON"))
    .addOption(new Option("--format <format>", "output format").choices(["ndjson"]).default("ndjson"))
    .action((opts: QueueCliOptions) => {
      const file = openDead(opts, false);
      if (!file) return;
      try {
        for (const d of file.list()) io.out(deadJson(d));
        setExit(ExitCode.ok);
      } finally {
        file.close();
      }
    });
  const move = (
    verb: "requeue" | "drop",
    description: string,
    act: (file: DeadLetterFile, seqs: number[] | undefined) => number[],
    done: string,
  ) =>
    withDb(deadLetter.command(verb).description(description).argument("[seq...]", `seqs to ${verb}`))
      .option("--all", `${verb} every dead letter`)
      .action((seqArgs: string[], opts: QueueCliOptions & { all?: boolean }) => {
        if ((!opts.all && seqArgs.length === 0) || (opts.all && seqArgs.length > 0)) {
          io.err(`fieldrelay: name the seqs to ${verb}, or pass --all (not both)`);
          setExit(ExitCode.usage);
          return;
        }
        const bad = seqArgs.find((a) => !/^[1-9][0-9]{0,15}$/.test(a));
        if (bad !== undefined) {
          io.err(
            `fieldrelay: "${bad}" is not a seq (a whole number ≥ 1); see fieldrelay queue dead-letter list`,
          );
          setExit(ExitCode.usage);
          return;
        }
        const seqs = seqArgs.map(Number);
        const file = openDead(opts, true);
        if (!file) return;
        try {
          const moved = act(file, opts.all ? undefined : seqs);
          const unknown = seqs.filter((s) => !moved.includes(s));
          io.out(`${done} ${moved.length} reading(s)${moved.length ? `: ${moved.join(", ")}` : ""}`);
          if (unknown.length > 0) {
            io.err(`fieldrelay: no dead letter with seq ${unknown.join(", ")}`);
            setExit(ExitCode.dataErr);
          } else setExit(ExitCode.ok);
        } finally {
          file.close();
        }
      });
  move(
    "requeue",
    "move dead letters back into the queue under their own seq (stop fieldrelay first; they are sent at its next start)",
    (file, seqs) => file.requeue(seqs),
    "requeued",
  );
  move(
    "drop",
    "delete dead letters for good (export them first if they matter)",
    (file, seqs) => file.drop(seqs),
    "dropped",
  );
  for (const cmd of deadLetter.commands) cmd.exitOverride();
  deadLetter.exitOverride();
  // ---- end dead letters ----

  for (const cmd of queue.commands) cmd.exitOverride();
  queue.exitOverride();
}

/** One dead letter as a JSON line (mono_ns as a string, like toJson). */
function deadJson(d: DeadLetter): string {
  return JSON.stringify({ ...d, monoNs: d.monoNs.toString() });
}

/** One reading as a JSON line; mono_ns as a decimal string (it does not fit a JSON number). */
function toJson(r: StoredReading): string {
  return JSON.stringify({ ...r, monoNs: r.monoNs.toString() });
}
