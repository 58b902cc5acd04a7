import { writeAllSync } from "../log/sink.ts"; // not log/index.ts: that loads pino, which the lazy commands avoid

/** Io is where a command prints; injected so commands are testable in-process. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

/**
 * Written synchronously and completely: process.stdout.write to a pipe is asynchronous, and the
 * process.exit that follows a command cut long output (over the pipe's 64 KiB) short.
 */
export const processIo: Io = {
  out: (text) => writeAllSync(1, text.endsWith("\n") ? text : `${text}\n`),
  err: (text) => writeAllSync(2, text.endsWith("\n") ? text : `${text}\n`),
};
