/**
 * The one logger: JSON lines on stdout (journald stores them as they are), or a readable
 * colourless-when-piped format with --log-format pretty. Components get child loggers with a
 * `component` field. Secret-bearing keys are censored wherever they appear.
 */
import pino, { type Logger as PinoLogger } from "pino";
import pretty from "pino-pretty";
import { RepeatLimiter } from "./rate-limit.ts";
import { createLogSink, droppedLogLines } from "./sink.ts";

export { RepeatLimiter } from "./rate-limit.ts";
export { createLogSink, flushAllSync, type LogSink, writeAllSync } from "./sink.ts";

export type Logger = PinoLogger;
export type LogFormat = "json" | "pretty";
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal";

const SECRET_PATHS = [
  "password",
  "token",
  "*.password",
  "*.token",
  "*.*.password",
  "*.*.token",
  "authorization",
  "*.authorization",
  "headers.authorization",
];

/** user:password@ in any URL inside a string: the password is replaced (a net under every log line). */
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/[^\s/?#@:]*:)[^\s/?#@]*@/gi;

/** A string with URL passwords hidden. */
export function scrubSecrets(text: string): string {
  return text.replace(URL_CREDENTIALS, "$1[redacted]@");
}

function scrubFields(fields: Record<string, unknown>, depth = 0): Record<string, unknown> {
  for (const [key, value] of Object.entries(fields)) {
    if (typeof value === "string") fields[key] = scrubSecrets(value);
    else if (depth < 2 && value !== null && typeof value === "object" && !Array.isArray(value))
      fields[key] = scrubFields({ ...(value as Record<string, unknown>) }, depth + 1);
  }
  return fields;
}

export interface LoggerOptions {
  format?: LogFormat;
  level?: LogLevel;
  /** Where lines go; stdout (through a LogSink that never blocks) unless a test captures them. */
  destination?: NodeJS.WritableStream | { write(s: string): unknown };
  /** Repeats of one warn/error message let through per minute (other levels are never limited). Default 10. */
  maxRepeatsPerMinute?: number;
  /** Monotonic ms for the repeat limiter (tests). */
  nowMs?: () => number;
}

const WARN = 40;
const FATAL = 60;
let limiters: RepeatLimiter[] = [];

/** Log lines this process did not write: suppressed repeats plus lines a full or failing output dropped. */
export function logLinesDropped(): { suppressed: number; dropped: number } {
  return { suppressed: limiters.reduce((n, l) => n + l.suppressedTotal, 0), dropped: droppedLogLines() };
}

export function createLogger({
  format = "json",
  level = "info",
  destination,
  maxRepeatsPerMinute = 10,
  nowMs,
}: LoggerOptions = {}): Logger {
  const limiter = new RepeatLimiter(maxRepeatsPerMinute, 60_000, nowMs);
  limiters = [...limiters.slice(-7), limiter];
  const options: pino.LoggerOptions = {
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: SECRET_PATHS, censor: "[redacted]" },
    formatters: { level: (label) => ({ level: label }), log: (fields) => scrubFields(fields) },
    hooks: {
      logMethod(args, method, levelNumber) {
        const at = typeof args[0] === "string" ? 0 : typeof args[1] === "string" ? 1 : -1;
        if (at >= 0) args[at] = scrubSecrets(args[at] as string);
        // Warnings and errors repeat when something stays broken; info lines are lifecycle events
        // (a reload repeats them legitimately) and fatal ones are the last word.
        if (levelNumber >= WARN && levelNumber < FATAL) {
          const bindings = (this as unknown as { bindings(): { component?: string } }).bindings();
          const suppressed = limiter.admit(
            `${levelNumber}|${bindings.component ?? ""}|${at >= 0 ? args[at] : ""}`,
          );
          if (suppressed === undefined) return;
          if (suppressed > 0) {
            if (at === 1) args[0] = { ...(args[0] as object), suppressedRepeats: suppressed };
            else args.unshift({ suppressedRepeats: suppressed } as never);
          }
        }
        method.apply(this, args as Parameters<typeof method>);
      },
    },
  };
  if (format === "pretty") {
    return pino(
      options,
      pretty({
        sync: true,
        colorize: Boolean(process.stdout.isTTY) && destination === undefined,
        destination: (destination as NodeJS.WritableStream | undefined) ?? 1,
        ignore: "pid,hostname",
        messageKey: "msg",
        translateTime: "SYS:HH:MM:ss.l",
      }),
    );
  }
  return pino(options, (destination as pino.DestinationStream | undefined) ?? stdoutSink());
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

let stdout: pino.DestinationStream | undefined;
/** One non-blocking sink for fd 1, shared by every logger of the process. */
function stdoutSink(): pino.DestinationStream {
  if (!stdout) {
    const sink = createLogSink({ fd: 1 });
    stdout = { write: (line: string) => sink.write(line) };
  }
  return stdout;
}
