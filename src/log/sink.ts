/**
 * LogSink: where log lines go, built so that logging can never stop capture (#12):
 *
 *   write(line) ─► RAM queue (≤ maxQueuedBytes) ─► one async fs.write at a time on the fd
 *                  │ queue full (nobody reads the pipe) ──► line dropped, counted
 *                  └ write fails (EPIPE, ENOSPC on /dev/full, EIO) ──► line dropped, counted
 *   flushSync() ─► what is queued, written synchronously (before exit: fatal lines arrive whole
 *                  even through a pipe; EAGAIN on a non-blocking pipe is retried)
 *
 * An async write blocks a libuv worker thread, never the event loop, so a stuck journal or a
 * pipe nobody reads costs log lines, not ingest or health answers.
 */
import { write as fsWrite, writeSync } from "node:fs";

export interface LogSinkStats {
  /** Lines dropped because the output was full, blocked or failing. */
  dropped: number;
  /** The last write error (e.g. "ENOSPC"), if any. */
  lastError: string | undefined;
}

export interface LogSink {
  write(line: string): void;
  flushSync(): void;
  stats(): LogSinkStats;
}

export interface LogSinkOptions {
  fd: number;
  /** Bytes held while the output is slow; beyond it lines are dropped. Default 1 MiB. */
  maxQueuedBytes?: number;
}

const sinks: LogSink[] = [];

/** A non-blocking pipe that stays full: give its reader about 30 s (1 ms per retry) before giving up. */
const MAX_WAITS = 30_000;
const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/** Lines dropped by every sink of this process (for /metrics). */
export function droppedLogLines(): number {
  return sinks.reduce((n, s) => n + s.stats().dropped, 0);
}

/** Write what every sink holds, synchronously (call before process.exit). */
export function flushAllSync(): void {
  for (const s of sinks) s.flushSync();
}

export function createLogSink({ fd, maxQueuedBytes = 1024 * 1024 }: LogSinkOptions): LogSink {
  const queue: Buffer[] = [];
  let queuedBytes = 0;
  let writing = false;
  const stats: LogSinkStats = { dropped: 0, lastError: undefined };

  function fail(error: unknown): void {
    stats.lastError = (error as NodeJS.ErrnoException).code ?? String(error);
  }

  function pump(): void {
    if (writing) return;
    const next = queue[0];
    if (!next) return;
    writing = true;
    fsWrite(fd, next, 0, next.length, null, (error, written) => {
      writing = false;
      if (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== "EAGAIN") {
          queue.shift();
          queuedBytes -= next.length;
          stats.dropped++;
          fail(error);
        }
      } else if (written < next.length) {
        queue[0] = next.subarray(written);
        queuedBytes -= written;
      } else {
        queue.shift();
        queuedBytes -= next.length;
      }
      if (queue.length > 0) setImmediate(pump);
    });
  }

  const sink: LogSink = {
    write(line) {
      const buf = Buffer.from(line);
      if (queuedBytes + buf.length > maxQueuedBytes) {
        stats.dropped++;
        return;
      }
      queue.push(buf);
      queuedBytes += buf.length;
      pump();
    },
    flushSync() {
      // An async write may be on its way with queue[0]; it completes or fails on its own, and
      // writing it again here would duplicate it, so start after it.
      const start = writing ? 1 : 0;
      for (let i = start; i < queue.length; i++) {
        let buf = queue[i] as Buffer;
        let waits = 0;
        while (buf.length > 0) {
          try {
            buf = buf.subarray(writeSync(fd, buf));
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code === "EAGAIN" && waits++ < MAX_WAITS) {
              sleepSync(1);
              continue;
            }
            stats.dropped++;
            fail(error);
            break;
          }
        }
      }
      queue.splice(start);
      queuedBytes = queue.reduce((n, b) => n + b.length, 0);
    },
    stats: () => ({ ...stats }),
  };
  sinks.push(sink);
  return sink;
}

/**
 * Write text to fd completely and synchronously (CLI output and fatal messages before exit: a
 * process.stdout.write to a pipe is cut off by process.exit past the pipe's 64 KiB).
 * Errors are swallowed: there is nowhere left to report them.
 */
export function writeAllSync(fd: number, text: string): void {
  let buf = Buffer.from(text);
  let waits = 0;
  while (buf.length > 0) {
    try {
      buf = buf.subarray(writeSync(fd, buf));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EAGAIN" && waits++ < MAX_WAITS) {
        sleepSync(1);
        continue;
      }
      return;
    }
  }
}
