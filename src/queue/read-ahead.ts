/**
 * The read-ahead reader behind next(): per priority, the next rows on disk in seq order, read
 * READ_AHEAD at a time (a query per publish turn cost more than the MQTT send), plus `scanFrom`,
 * a seq at or below which every row of that priority is inflight or waiting for its delete, so a
 * new window starts there instead of re-reading a drained prefix (a backlog drains at broker
 * speed and deletes wait up to commit_interval: rescanning them on every turn made draining
 * quadratic).
 *
 * State of one priority's window:
 *
 *   (none) ─ of() ─► OPEN(rows=[], after=scanFrom) ─ refill() ─► OPEN(rows, after=last seq read)
 *      ▲                │ refill() read < READ_AHEAD rows ─► EXHAUSTED (nothing more on disk)
 *      │                │ next() passes drained rows ─► at++ and scanFrom = their seq
 *      └── invalidate() (a commit changed which rows are on disk)
 *          rewind(p)    (an undone eviction put rows back below scanFrom)
 */
import type { Database } from "bun:sqlite";
import { ROW_COLUMNS, type Row } from "./rows.ts";

/** Rows of one priority read ahead from disk in seq order; rows[0, at) are drained (inflight or deleted). */
export interface ReadAheadWindow {
  rows: Row[];
  at: number;
  /** Highest seq read so far: the next read starts after it. */
  after: number;
  /** The last read came back short: nothing more on disk until the next commit. */
  exhausted: boolean;
}

const READ_AHEAD = 256;

export class ReadAheadReader {
  private readonly windows = new Map<number, ReadAheadWindow>();
  private readonly scanFrom = new Map<number, number>();

  /** onReadError: told of every failed read (the queue asks for a full check of a damaged file). */
  constructor(
    private readonly db: Database,
    private readonly onReadError?: (error: unknown) => void,
  ) {}

  /** The window of `priority`, opened at its scanFrom when there is none. */
  of(priority: number): ReadAheadWindow {
    let w = this.windows.get(priority);
    if (!w) {
      w = { rows: [], at: 0, after: this.scanFrom.get(priority) ?? 0, exhausted: false };
      this.windows.set(priority, w);
    }
    return w;
  }

  /** Drop the drained prefix and read the next READ_AHEAD rows; returns how far indexes moved. Throws on a read error. */
  refill(priority: number, w: ReadAheadWindow): number {
    const dropped = w.at;
    let fetched: Row[];
    try {
      fetched = this.db
        .query(`SELECT ${ROW_COLUMNS} FROM readings_v WHERE priority = ? AND seq > ? ORDER BY seq LIMIT ?`)
        .all(priority, w.after, READ_AHEAD) as Row[];
    } catch (error) {
      this.onReadError?.(error);
      throw error;
    }
    w.rows = w.rows.slice(dropped).concat(fetched);
    w.at = 0;
    w.exhausted = fetched.length < READ_AHEAD;
    if (fetched.length > 0) w.after = (fetched[fetched.length - 1] as Row).seq;
    return dropped;
  }

  /** Every row of `priority` up to `seq` is drained: later windows start above it. */
  drainedTo(priority: number, seq: number): void {
    this.scanFrom.set(priority, seq);
  }

  /** A commit changed which rows are on disk. */
  invalidate(): void {
    this.windows.clear();
  }

  /** Rows of `priority` are back below its scanFrom (an eviction was undone). */
  rewind(priority: number): void {
    this.scanFrom.delete(priority);
    this.windows.clear();
  }
}
