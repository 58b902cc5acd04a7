/**
 * The queue's public vocabulary. The publisher depends on the Queue interface only (as mqtt.js's
 * client depends on its Store), so persistence can change without touching protocol code.
 */
import type { Stamp } from "../clock/types.ts";

export type FieldValue = number | string | boolean;
export type QoS = 0 | 1 | 2;

/** Reading is one captured measurement, before it has a seq. */
export interface Reading extends Stamp {
  stream: string;
  /** 1 (lowest) to 10 (highest). */
  priority: number;
  qos: QoS;
  values: Record<string, FieldValue>;
  anomaly?: boolean;
}

/** QueuedReading has its per-device seq, which never repeats (it survives restarts). */
export interface QueuedReading extends Reading {
  seq: number;
}

export type CaptureResult = { ok: true; seq: number } | { ok: false; reason: "refused"; detail: string };

/** What store() resolves with: every reading committed (in order), or none stored and why. */
export type StoreResult = { ok: true; seqs: number[] } | { ok: false; detail: string };

export interface QueueStats {
  /** Readings accepted into the queue (RAM buffer or disk). */
  captured: number;
  /** Readings written to disk by a commit. */
  committed: number;
  /** Commits (transactions) run. */
  commits: number;
  /** Readings acked by the broker (deleted, or dropped from RAM before commit). */
  delivered: number;
  /** Readings acked before their commit deadline, so never written to flash. */
  deliveredBeforeCommit: number;
  evictedByPriority: Record<number, number>;
  refusedByPriority: Record<number, number>;
  /** Rows on disk plus readings waiting in RAM. */
  rows: number;
  /** rows split by priority (only priorities that have rows). */
  rowsByPriority: Record<number, number>;
  bytes: number;
  pendingInRam: number;
  inflight: number;
  /** Age (monotonic, seconds) of the oldest unsent reading of the current boot; 0 when empty. */
  oldestUnsentAgeS: number;
  /** True when only protected rows remain and new low-priority readings are refused. */
  refusing: boolean;
  /** Last successful commit, CLOCK_MONOTONIC ms; undefined before the first. */
  lastCommitMonoMs: number | undefined;
  /** Last commit attempt, successful or not, CLOCK_MONOTONIC ms (a full disk is retried once a second). */
  lastCommitAttemptMonoMs: number | undefined;
  /** Last commit failure (e.g. SQLITE_FULL, read-only), cleared by the next success. */
  lastError: string | undefined;
  /**
   * Set while commits fail because the card or its file system does (EIO, read-only after an
   * error): one line naming the file, device and mount. Readings are then captured by broker acks.
   */
  storageFault?: string | undefined;
  seqNext: number;
  /** 1 when this start found queue state lost (see lost-state.ts), else 0. */
  stateLost: number;
  /** #12: readings the broker refused for good, kept in the dead-letter table. */
  deadLetters: number;
  /** #12: why the last reading was moved to dead letters by this process. */
  lastDeadLetterReason?: string | undefined;
}

/**
 * Queue is the store-and-forward buffer. A reading is *captured* once committed or acked,
 * whichever comes first; whenCaptured() resolves then.
 */
export interface Queue {
  /** Assign a seq and hold the reading in the write-behind buffer (or commit now if commit_interval_ms = 0). */
  capture(reading: Reading): CaptureResult;
  /**
   * For a client waiting for its answer: capture these readings all or none. They are offered to
   * the publisher at once (QoS 0: after their commit); resolves once every one is committed (a
   * short gathering window, ingest_commit_ms, not the commit interval) or acked by the broker,
   * or with the reason none was stored.
   */
  store(readings: Reading[]): Promise<StoreResult>;
  /** Resolves when every listed seq is committed or acked; rejects if it was evicted first or the queue closed. */
  whenCaptured(seqs: number[]): Promise<void>;
  /** Up to `limit` readings to send next, skipping `exclude`: previously inflight first, then priority DESC, seq ASC. */
  next(limit: number, exclude: ReadonlySet<number>): QueuedReading[];
  /** Record that these were handed to the broker (resent first after a reconnect or restart). */
  markInflight(seqs: number[]): void;
  /** The broker acknowledged these: delete them (batched). */
  ack(seqs: number[]): void;
  /** #12: the broker refused these for good: keep them as dead letters and stop sending them. */
  deadLetter(seqs: number[], reason: string): void;
  /** #12: the publisher's poison-pill suspects (seq → strikes) kept by saveStrikes, for seqs still queued. */
  strikes(): Map<number, number>;
  /** #12: keep these suspects and strikes across restarts (replaces the last set; empty clears). */
  saveStrikes(strikes: ReadonlyMap<number, number>): void;
  /** Called whenever new readings become available to send. Returns an unsubscribe function. */
  onAvailable(listener: () => void): () => void;
  /** Commit the write-behind buffer now. */
  flush(): Promise<void>;
  stats(): QueueStats;
  /** Commit what is buffered and close the database. */
  close(): Promise<void>;
}
