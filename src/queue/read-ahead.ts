/**
 * The read-ahead reader behind next(): per priority, the next rows on disk in seq order, read
 * READ_AHEAD at a time (a query per publish turn cost more than the MQTT send), plus `scanFrom`,
 * a seq at or below which every row of that priority is inflight or waiting for its delete, so a
 * new window starts there instead of re-reading a drained prefix (a backlog drains at broker
 * speed and deletes wait up to commit_interval: rescanning them on every turn made draining
 * quadratic).
 *
 * Rows are read as arrays (one prepared statement, `.values()`, from the table itself with the
 * boot id looked up in RAM) and turned into a QueuedReading only when next() hands one out: a
 * batched drain reads every row once, and objects per row through the readings_v join cost about
 * twice as much (measured 1.3 vs 0.7 µs per row).
 *
 * State of one priority's window:
 *
 *   (none) ─ of() ─► OPEN(rows=[], after=scanFrom) ─ refill() ─► OPEN(rows, after=last seq read)
 *      ▲                │ refill() read < READ_AHEAD rows ─► EXHAUSTED (nothing more on disk)
 *      │                │ next() passes drained rows ─► at++ and scanFrom = their seq
 *      │                │ committed(deletes only) ─► the deleted rows leave the window, it stays OPEN
 *      └── invalidate() / committed(with new rows) (a commit put rows on disk the window cannot know)
 *          rewind(p)    (an undone eviction put rows back below scanFrom)
 */
import type { Database, Statement } from "bun:sqlite";
import type { QueuedReading } from "./types.ts";

/** A readings row as read ahead: the columns of DISK_COLUMNS, in that order. */
export type DiskRow = [
  seq: number,
  stream: string,
  priority: number,
  qos: number,
  boot: number,
  monoNs: string,
  wallMs: number,
  tq: string,
  vals: string,
  anomaly: number,
  bytes: number,
];

const DISK_COLUMNS =
  "seq, stream, priority, qos, boot, CAST(mono_ns AS TEXT), wall_ms, tq, vals, anomaly, bytes";

/** Rows of one priority read ahead from disk in seq order; rows[0, at) are drained (inflight or deleted). */
export interface ReadAheadWindow {
  rows: DiskRow[];
  at: number;
  /** Highest seq read so far: the next read starts after it. */
  after: number;
  /** The last read came back short: nothing more on disk until the next commit. */
  exhausted: boolean;
}

const READ_AHEAD = 1024;

export class ReadAheadReader {
  private readonly windows = new Map<number, ReadAheadWindow>();
  private readonly scanFrom = new Map<number, number>();
  private readonly bootIds = new Map<number, string>();
  private select: Statement | undefined;

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
    this.select ??= this.db.query(
      `SELECT ${DISK_COLUMNS} FROM readings WHERE priority = ? AND seq > ? ORDER BY seq LIMIT ?`,
    );
    let fetched: DiskRow[];
    try {
      fetched = this.select.values(priority, w.after, READ_AHEAD) as DiskRow[];
    } catch (error) {
      this.onReadError?.(error);
      throw error;
    }
    w.rows = dropped === 0 && w.rows.length === 0 ? fetched : w.rows.slice(dropped).concat(fetched);
    w.at = 0;
    w.exhausted = fetched.length < READ_AHEAD;
    if (fetched.length > 0) w.after = (fetched[fetched.length - 1] as DiskRow)[0];
    return dropped;
  }

  /** The reading a row holds (its values parsed, its boot id looked up once per boot). */
  toReading(row: DiskRow): QueuedReading {
    const r: QueuedReading = {
      seq: row[0],
      stream: row[1],
      priority: row[2],
      qos: row[3] as QueuedReading["qos"],
      bootId: this.bootId(row[4]),
      monoNs: BigInt(row[5]),
      wallMs: row[6],
      tq: row[7] as QueuedReading["tq"],
      values: JSON.parse(row[8]) as QueuedReading["values"],
    };
    if (row[9]) r.anomaly = true;
    return r;
  }

  /** Every row of `priority` up to `seq` is drained: later windows start above it. */
  drainedTo(priority: number, seq: number): void {
    this.scanFrom.set(priority, seq);
  }

  /**
   * A commit went through. With new rows on disk the windows are dropped (rows below their end may
   * have arrived); with only deletes, the deleted rows leave the windows and the rest stays read.
   */
  committed(insertedRows: boolean, deleted: ReadonlySet<number>): void {
    if (insertedRows) {
      this.windows.clear();
      return;
    }
    if (deleted.size === 0) return;
    for (const w of this.windows.values()) {
      const kept: DiskRow[] = [];
      let at = w.at;
      for (let i = 0; i < w.rows.length; i++) {
        const row = w.rows[i] as DiskRow;
        if (deleted.has(row[0])) {
          if (i < w.at) at--;
        } else kept.push(row);
      }
      w.rows = kept;
      w.at = at;
    }
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

  private bootId(id: number): string {
    let text = this.bootIds.get(id);
    if (text === undefined) {
      const row = this.db.query("SELECT boot_id FROM boots WHERE id = ?").values(id)[0] as
        | [string]
        | undefined;
      text = row?.[0] ?? "unknown";
      this.bootIds.set(id, text);
    }
    return text;
  }
}
