/**
 * Writer: group commit between the MQTT consumer and PostgreSQL. Messages queue up with an ack
 * callback; a flush writes up to batch_size readings' worth of messages in ONE transaction and
 * calls each message's ack only after that transaction committed.
 *
 *   idle ──add──► waiting (timer: commit_interval_ms, or at once when batch_size is reached)
 *   waiting ──flush──► committing ──ok──► ack every message of the batch ──► idle | waiting
 *                                 └─database unreachable──► down: nothing acked, the batch stays
 *                                   first in line, retry every retry_s until a commit succeeds
 *                                 └─data refused (SQLSTATE 22xxx/23xxx/54xxx)──► each message in
 *                                   its own transaction; one the database still refuses becomes a
 *                                   dead letter, so one bad message never jams the rest
 *
 * While down, nothing is acknowledged, so the broker keeps the messages (and stops sending once
 * the client's receive maximum of unacknowledged messages is reached).
 */
import { describeError } from "../errors/index.ts";
import type { Logger } from "../log/index.ts";
import type { BatchResult, Store, Work } from "./store.ts";

export interface Pending {
  work: Work;
  /** Called once, after the transaction holding this message committed. */
  ack: () => void;
  /** Monotonic ms when the message arrived, for the lag metrics. */
  receivedMs: number;
  /** The raw message, so a message the database refuses can still be dead-lettered. */
  topic: string;
  payload: Uint8Array;
  /** The broker connection it arrived on (acks are only valid there). */
  epoch?: number;
}

export interface WriterStats {
  messages: number;
  inserted: number;
  duplicates: number;
  corrected: number;
  deadLetters: number;
  commits: number;
  commitFailures: number;
  refusedByDatabase: number;
  pending: number;
  databaseUp: boolean;
  oldestPendingMs: number | undefined;
  lastCommitMs: number | undefined;
}

export interface WriterOptions {
  store: Store;
  batchSize: number;
  commitIntervalMs: number;
  retryMs: number;
  log: Logger;
  nowMs: () => number;
  /** Observes each commit (for the latency metric). */
  onCommit?: (latencyMs: number[], result: BatchResult) => void;
}

export interface Writer {
  add(p: Pending): void;
  /** Drop queued (not yet committing) messages that match, e.g. of a closed connection. */
  discard(match: (p: Pending) => boolean): number;
  stats(): WriterStats;
  /** Commit everything queued (retrying while the database is down, until the deadline). */
  drain(timeoutMs: number): Promise<boolean>;
  stop(): void;
}

const rowsOf = (w: Work) => (w.kind === "readings" ? w.rows.length : 1);

/** Errors about the data itself: retrying the same batch would fail the same way. */
export function isDataError(error: unknown): boolean {
  const e = error as { errno?: unknown; code?: unknown };
  const state = typeof e?.errno === "string" ? e.errno : typeof e?.code === "string" ? e.code : "";
  return /^(22|23|54)[0-9A-Z]{3}$/.test(state);
}

export function createWriter(options: WriterOptions): Writer {
  const { store, batchSize, commitIntervalMs, retryMs, log, nowMs } = options;
  const queue: Pending[] = [];
  let queuedRows = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let committing: Promise<void> | undefined;
  let stopped = false;
  let downSince: number | undefined;
  const s: WriterStats = {
    messages: 0,
    inserted: 0,
    duplicates: 0,
    corrected: 0,
    deadLetters: 0,
    commits: 0,
    commitFailures: 0,
    refusedByDatabase: 0,
    pending: 0,
    databaseUp: true,
    oldestPendingMs: undefined,
    lastCommitMs: undefined,
  };

  function schedule(delayMs: number): void {
    if (stopped || committing || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void flush();
    }, delayMs);
  }

  function take(): Pending[] {
    let rows = 0;
    let count = 0;
    while (count < queue.length && (count === 0 || rows + rowsOf(queue[count]!.work) <= batchSize)) {
      rows += rowsOf(queue[count]!.work);
      count++;
    }
    queuedRows -= rows;
    return queue.splice(0, count);
  }

  function committed(batch: Pending[], result: BatchResult): void {
    const now = nowMs();
    s.commits += 1;
    s.messages += batch.length;
    s.inserted += result.inserted;
    s.duplicates += result.duplicates;
    s.corrected += result.corrected;
    s.deadLetters += result.deadLetters;
    s.lastCommitMs = now;
    if (downSince !== undefined) {
      log.info({ downForS: Math.round((now - downSince) / 1000) }, "database reachable again; committing");
      downSince = undefined;
    }
    s.databaseUp = true;
    for (const p of batch) p.ack();
    options.onCommit?.(
      batch.map((p) => now - p.receivedMs),
      result,
    );
  }

  async function writeAlone(batch: Pending[]): Promise<void> {
    for (const p of batch) {
      try {
        committed([p], await store.writeBatch([p.work]));
      } catch (error) {
        if (!isDataError(error)) throw error;
        s.refusedByDatabase += 1;
        log.warn(
          { topic: p.topic, err: describeError(error) },
          "database refused a message; storing it as a dead letter",
        );
        const dead: Work = {
          kind: "dead",
          topic: p.topic,
          payload: p.payload,
          dead: "refused-by-database",
          reason: describeError(error),
        };
        committed([p], await store.writeBatch([dead]));
      }
    }
  }

  async function flush(): Promise<void> {
    if (committing || stopped || queue.length === 0) return;
    const batch = take();
    const run = (async () => {
      try {
        try {
          committed(batch, await store.writeBatch(batch.map((p) => p.work)));
        } catch (error) {
          if (!isDataError(error)) throw error;
          await writeAlone(batch);
        }
      } catch (error) {
        s.commitFailures += 1;
        s.databaseUp = false;
        // Back in front, in order: nothing of this batch was acknowledged.
        queue.unshift(...batch);
        queuedRows += batch.reduce((n, p) => n + rowsOf(p.work), 0);
        if (downSince === undefined) {
          downSince = nowMs();
          log.error(
            { err: describeError(error), pending: queue.length },
            "database write failed; holding acknowledgements and retrying",
          );
        }
      }
    })();
    committing = run;
    await run;
    committing = undefined;
    if (queue.length === 0) return;
    if (!s.databaseUp) schedule(retryMs);
    else if (queuedRows >= batchSize) void flush();
    else schedule(commitIntervalMs);
  }

  return {
    add(p) {
      queue.push(p);
      queuedRows += rowsOf(p.work);
      if (!s.databaseUp) return schedule(retryMs);
      if (queuedRows >= batchSize && !committing) {
        if (timer) clearTimeout(timer);
        timer = undefined;
        void flush();
      } else schedule(commitIntervalMs);
    },
    discard(match) {
      let n = 0;
      for (let i = queue.length - 1; i >= 0; i--) {
        if (match(queue[i]!)) {
          queuedRows -= rowsOf(queue[i]!.work);
          queue.splice(i, 1);
          n++;
        }
      }
      return n;
    },
    stats() {
      return {
        ...s,
        pending: queue.length,
        oldestPendingMs:
          queue.length > 0 ? Math.min(...queue.slice(0, 1000).map((p) => p.receivedMs)) : undefined,
      };
    },
    async drain(timeoutMs) {
      const deadline = nowMs() + timeoutMs;
      while ((queue.length > 0 || committing) && nowMs() < deadline) {
        if (timer) clearTimeout(timer);
        timer = undefined;
        if (committing) await committing;
        else await flush();
        if (!s.databaseUp && queue.length > 0)
          await Bun.sleep(Math.min(retryMs, Math.max(0, deadline - nowMs())));
      }
      return queue.length === 0 && !committing;
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
}
