/**
 * How the queue writes what the broker has (inflight marks) and what it acknowledged (deletes):
 * a few statements per commit however many rows, because a batched drain marks and deletes
 * hundreds of thousands of rows a minute. One UPDATE per marked row and one DELETE per acked row
 * cost about 2 µs each (the row and its index entries rewritten): together more than everything
 * else a batched drain does per reading (measured, /work/notes/15-drain.md).
 *
 *   inflight_runs(lo INTEGER PRIMARY KEY, hi INTEGER NOT NULL)
 *     every readings row with lo ≤ seq ≤ hi was handed to the broker and not acked yet.
 *
 * A run is written only for seqs that were ALL marked (consecutive integers, each a row on disk),
 * so it is exact: no row in [lo, hi] is anything but a marked row. An ack deletes its row in the
 * same kind of transaction, so the run stays true as its rows go; it is dropped once none is left.
 * Rows marked by older builds (readings.inflight = 1) and rows committed after they were marked
 * (inserted with inflight = 1) keep the column; load() reads both.
 *
 * Deletes are written the same way: the sorted seqs to delete, cut into runs of consecutive
 * integers, one `DELETE … WHERE seq BETWEEN lo AND hi` per run (exact for the same reason: every
 * integer in the run is a seq being deleted). Acks of one stream's batches leave gaps; once the
 * other streams' batches are acked too the runs join up.
 *
 * Life of a run (its row count `left` is kept in RAM):
 *
 *   markInflight() of disk rows ─► unsaved seqs ─ commit ─► RUN(lo, hi, left = hi − lo + 1)
 *   RUN ─ rows deleted (ack, dead letter, eviction) ─► left −= rows in [lo, hi] ─ left = 0 ─► run row deleted
 *
 * The table is created with CREATE TABLE IF NOT EXISTS by the first commit that marks a run (so
 * opening writes nothing, and the readings schema and its version are untouched: an older build
 * ignores the table and sends those rows in plain priority order after a downgrade, never loses
 * them). A reading requeued from the dead letters
 * (another process, service stopped) whose seq lies in a surviving run counts as inflight: it is
 * sent first, nothing else.
 *
 * persist() runs inside the queue's commit transaction and returns a plan; apply() makes it the
 * RAM state only once that transaction committed (a failed commit is retried from the same sets).
 */
import type { Database, Statement } from "bun:sqlite";

export const INFLIGHT_RUNS_TABLE =
  "CREATE TABLE IF NOT EXISTS inflight_runs (lo INTEGER PRIMARY KEY, hi INTEGER NOT NULL)";

export interface Run {
  lo: number;
  hi: number;
  /** Rows of the run still on disk. */
  left: number;
}

/** What one commit wrote, applied to RAM once it committed. */
export interface PersistPlan {
  added: Run[];
  /** Rows deleted from each saved run (by its lo). */
  removed: Map<number, number>;
  /** Stale runs deleted. */
  stale: number;
}

/** Sorted seqs cut into runs of consecutive integers. */
export function consecutiveRuns(sorted: readonly number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let i = 0;
  while (i < sorted.length) {
    const lo = sorted[i]!;
    let hi = lo;
    while (i + 1 < sorted.length && sorted[i + 1] === hi + 1) hi = sorted[++i]!;
    out.push([lo, hi]);
    i++;
  }
  return out;
}

function sortedSeqs(seqs: ReadonlySet<number>): number[] {
  const out = Array.from(seqs);
  // Usually already ascending (seqs are taken in order): check before sorting.
  for (let i = 1; i < out.length; i++) if (out[i - 1]! > out[i]!) return out.sort((a, b) => a - b);
  return out;
}

export function hasInflightRuns(db: Database): boolean {
  return (
    db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'inflight_runs'").get() !== null
  );
}

export class InflightRuns {
  /** Saved runs, ascending and disjoint. */
  private runs: Run[] = [];
  /** Runs found without rows at load: their table rows go with the next commit (opening writes nothing). */
  private stale: number[] = [];
  private tableReady = false;
  private insertRun: Statement | undefined;
  private deleteRun: Statement | undefined;
  private readonly deleteRows: Statement;

  constructor(private readonly db: Database) {
    this.deleteRows = db.query("DELETE FROM readings WHERE seq BETWEEN ? AND ?");
  }

  /** Saved runs (for tests and stats). */
  get saved(): readonly Run[] {
    return this.runs;
  }

  /**
   * The seqs of every row marked inflight on disk: in a run, or flagged by the column. Runs with no
   * row left are dropped (from RAM; their table row goes with the next commit's first delete there).
   */
  load(): number[] {
    const flagged = (
      this.db.query("SELECT seq FROM readings WHERE inflight = 1").values() as Array<[number]>
    ).map((r) => r[0]);
    this.runs = [];
    this.stale = [];
    this.tableReady = hasInflightRuns(this.db);
    if (!this.tableReady) return flagged;
    const runs = this.db.query("SELECT lo, hi FROM inflight_runs ORDER BY lo").values() as Array<
      [number, number]
    >;
    const rows = this.db.query("SELECT seq FROM readings WHERE seq BETWEEN ? AND ?");
    const seqs = new Set(flagged);
    for (const [lo, hi] of runs) {
      const inRun = rows.values(lo, hi) as Array<[number]>;
      for (const [seq] of inRun) seqs.add(seq);
      // A run without rows: all deleted, the run's own delete lost to a crash.
      if (inRun.length > 0) this.runs.push({ lo, hi, left: inRun.length });
      else this.stale.push(lo);
    }
    return [...seqs];
  }

  /**
   * Write, inside the caller's transaction, the inflight marks of `marked` (disk rows, none of them
   * in a saved run) and the deletes of `deletes`. Returns the plan to apply() once committed.
   */
  persist(marked: ReadonlySet<number>, deletes: ReadonlySet<number>): PersistPlan {
    const plan: PersistPlan = { added: [], removed: new Map(), stale: this.stale.length };
    if (marked.size > 0 || this.stale.length > 0 || this.runs.length > 0) this.prepareTable();
    for (const lo of this.stale) this.deleteRun!.run(lo);
    if (deletes.size > 0) {
      for (const [lo, hi] of consecutiveRuns(sortedSeqs(deletes))) {
        this.deleteRows.run(lo, hi);
        this.countRemoved(lo, hi, plan.removed);
      }
      for (const run of this.runs) {
        const removed = plan.removed.get(run.lo);
        if (removed !== undefined && removed >= run.left) this.deleteRun!.run(run.lo);
      }
    }
    if (marked.size > 0) {
      for (const [lo, hi] of consecutiveRuns(sortedSeqs(marked))) {
        this.insertRun!.run(lo, hi);
        plan.added.push({ lo, hi, left: hi - lo + 1 });
      }
    }
    return plan;
  }

  /** The transaction that persist() wrote into committed: make it the RAM state. */
  apply(plan: PersistPlan): void {
    if (plan.added.length > 0) this.tableReady = true;
    this.stale.splice(0, plan.stale);
    if (plan.removed.size > 0) {
      for (const run of this.runs) {
        const removed = plan.removed.get(run.lo);
        if (removed !== undefined) run.left -= removed;
      }
      this.runs = this.runs.filter((r) => r.left > 0);
    }
    if (plan.added.length > 0) {
      const merged = this.runs.concat(plan.added);
      // New runs usually come after the saved ones; sort only when they do not.
      const last = this.runs[this.runs.length - 1];
      if (last !== undefined && last.lo > plan.added[0]!.lo) merged.sort((a, b) => a.lo - b.lo);
      else
        for (let i = 1; i < plan.added.length; i++)
          if (plan.added[i - 1]!.lo > plan.added[i]!.lo) {
            merged.sort((a, b) => a.lo - b.lo);
            break;
          }
      this.runs = merged;
    }
  }

  /** Add to `removed` how many rows of [lo, hi] each saved run loses (every seq there is a row being deleted). */
  private countRemoved(lo: number, hi: number, removed: Map<number, number>): void {
    // First run whose hi ≥ lo (runs are ascending and disjoint).
    let a = 0;
    let b = this.runs.length;
    while (a < b) {
      const m = (a + b) >> 1;
      if (this.runs[m]!.hi < lo) a = m + 1;
      else b = m;
    }
    for (let i = a; i < this.runs.length; i++) {
      const run = this.runs[i]!;
      if (run.lo > hi) break;
      const n = Math.min(hi, run.hi) - Math.max(lo, run.lo) + 1;
      removed.set(run.lo, (removed.get(run.lo) ?? 0) + n);
    }
  }

  /** Create the table (inside the commit's transaction) and its statements, once. */
  private prepareTable(): void {
    // Until a commit that created it went through (a rolled back one takes the table with it).
    if (!this.tableReady) this.db.exec(INFLIGHT_RUNS_TABLE);
    this.insertRun ??= this.db.query("INSERT OR REPLACE INTO inflight_runs(lo, hi) VALUES (?, ?)");
    this.deleteRun ??= this.db.query("DELETE FROM inflight_runs WHERE lo = ?");
  }
}
