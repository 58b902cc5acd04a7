/**
 * StatusHistory is the status page's memory: the last hour of a few numbers, one row every step
 * (5 s by default, so 720 rows), in fixed-size Float64Array columns. It is the only history
 * fieldrelay keeps for the page, and it is bounded from the start: capacity × columns × 8 bytes
 * (720 × 64 × 8 = 360 KiB at most; a typical device with a handful of sensors uses well under
 * 100 KiB). Recording a row is a handful of array writes; nothing is allocated per row.
 *
 *   columns: created when a key first appears (earlier rows read as missing), never removed;
 *            at most maxColumns, further keys are ignored (counted in `ignoredKeys`).
 *   rows:    a ring; row i of the ring holds time[i] (CLOCK_MONOTONIC ms) and every column's value
 *            at that time. A key absent from a recorded row is stored as NaN (missing), or as 0
 *            when zeroWhenMissing(key) says its absence means zero (e.g. a priority with no rows).
 */

export interface HistoryOptions {
  /** Rows kept (the window is capacity × step). */
  capacity: number;
  maxColumns: number;
  zeroWhenMissing?: (key: string) => boolean;
}

/** HistorySlice is rows in time order: t (monotonic ms) and, per column, the value or null. */
export interface HistorySlice {
  t: number[];
  series: Record<string, Array<number | null>>;
}

export class StatusHistory {
  private readonly time: Float64Array;
  private readonly columns = new Map<string, Float64Array>();
  /** Index of the next row to write; rows = min(written, capacity). */
  private next = 0;
  private written = 0;
  ignoredKeys = 0;

  constructor(private readonly options: HistoryOptions) {
    this.time = new Float64Array(options.capacity);
  }

  get rows(): number {
    return Math.min(this.written, this.options.capacity);
  }

  get columnCount(): number {
    return this.columns.size;
  }

  /** The newest row at or before atMonoMs: its time and the named columns' values (NaN if missing). */
  at(atMonoMs: number, keys: string[]): { t: number; values: Record<string, number> } | undefined {
    const { capacity } = this.options;
    for (let k = 1; k <= this.rows; k++) {
      const i = (this.next - k + capacity) % capacity;
      if (this.time[i]! > atMonoMs) continue;
      const values: Record<string, number> = {};
      for (const key of keys) values[key] = this.columns.get(key)?.[i] ?? Number.NaN;
      return { t: this.time[i]!, values };
    }
    return undefined;
  }

  /** The oldest row's time (undefined before the first row). */
  get oldestMonoMs(): number | undefined {
    if (this.rows === 0) return undefined;
    return this.time[(this.next - this.rows + this.options.capacity) % this.options.capacity];
  }

  record(tMonoMs: number, values: Record<string, number>): void {
    const { capacity, maxColumns, zeroWhenMissing } = this.options;
    for (const key of Object.keys(values)) {
      if (this.columns.has(key)) continue;
      if (this.columns.size >= maxColumns) {
        this.ignoredKeys++;
        continue;
      }
      this.columns.set(key, new Float64Array(capacity).fill(Number.NaN));
    }
    const i = this.next;
    this.time[i] = tMonoMs;
    for (const [key, col] of this.columns) {
      const v = values[key];
      col[i] = v !== undefined && Number.isFinite(v) ? v : zeroWhenMissing?.(key) ? 0 : Number.NaN;
    }
    this.next = (i + 1) % capacity;
    this.written++;
  }

  /** Rows at or after fromMonoMs (all rows without it), oldest first. */
  slice(fromMonoMs = Number.NEGATIVE_INFINITY): HistorySlice {
    const { capacity } = this.options;
    const n = this.rows;
    const first = (this.next - n + capacity) % capacity;
    const picked: number[] = [];
    for (let k = 0; k < n; k++) {
      const i = (first + k) % capacity;
      if (this.time[i]! >= fromMonoMs) picked.push(i);
    }
    const series: Record<string, Array<number | null>> = {};
    for (const [key, col] of this.columns) {
      series[key] = picked.map((i) => (Number.isNaN(col[i]!) ? null : col[i]!));
    }
    return { t: picked.map((i) => this.time[i]!), series };
  }
}
