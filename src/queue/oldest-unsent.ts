/**
 * The age of the oldest reading of this boot not yet handed to the broker (QueueStats.
 * oldestUnsentAgeS, which feeds STATUS, the watchdog and /health), without a scan of the backlog
 * per stats() call.
 *
 * RAM: the write-behind buffer is in seq order, and within a boot mono_ns grows with seq, so the
 * first unsent reading of this boot is the oldest (oldestUnsentInRam).
 *
 * Disk: the oldest unsent row is cached, with a floor below which every row is known to be of an
 * earlier boot, inflight or being deleted:
 *
 *   UNKNOWN ─ onDisk() scans up from the floor ─► FOUND(seq) | NONE
 *   FOUND(seq) ─ touch(seq): that row is handed out or deleted ─► UNKNOWN (floor stays below it)
 *   NONE ─ a commit wrote rows ─► UNKNOWN
 *   any ─ touch() / a read fails ─► UNKNOWN;  rewindTo(seq): an undone eviction lowers the floor
 *
 * The floor only moves up, except by rewindTo: stats() does not re-read earlier boots' rows each
 * time the oldest row of this one goes.
 */
import type { Database } from "bun:sqlite";
import type { Pending } from "./write-behind.ts";

export interface OldestRow {
  seq: number;
  ns: bigint;
}

/** mono_ns of the first reading of `bootId` in the buffer not handed to the broker. */
export function oldestUnsentInRam(pending: Iterable<Pending>, bootId: string): bigint | undefined {
  for (const p of pending) {
    if (p.reading.bootId === bootId && !p.inflight) return p.reading.monoNs;
  }
  return undefined;
}

/** Seconds since the older of the two (0 with neither, never negative). */
export function unsentAgeS(ramNs: bigint | undefined, disk: OldestRow | null, nowMonoMs: number): number {
  let oldestNs = ramNs;
  if (disk && (oldestNs === undefined || disk.ns < oldestNs)) oldestNs = disk.ns;
  if (oldestNs === undefined) return 0;
  return Math.max(0, (nowMonoMs - Number(oldestNs / 1_000_000n)) / 1000);
}

export class OldestUnsentOnDisk {
  /** undefined = unknown, null = none. */
  private cached: OldestRow | null | undefined;
  /** Every row at or below this seq is of an earlier boot, inflight or being deleted. */
  private scanFrom = 0;

  /**
   * `boots` maps boot_id text to boots.id (this boot's row may not exist yet); `inflight` and
   * `deletes` are the queue's live sets, whose rows on disk do not count as unsent.
   */
  constructor(
    private readonly db: Database,
    private readonly bootId: string,
    private readonly boots: ReadonlyMap<string, number>,
    private readonly inflight: ReadonlySet<number>,
    private readonly deletes: ReadonlySet<number>,
  ) {}

  /** The oldest unsent row of this boot on disk, or null. Throws when the database cannot be read. */
  onDisk(): OldestRow | null {
    if (this.cached !== undefined) return this.cached;
    this.cached = null;
    const stmt = this.db.query(
      "SELECT seq, CAST(mono_ns AS TEXT) AS mono_ns FROM readings WHERE boot = ? AND inflight = 0 AND seq > ? ORDER BY seq LIMIT 256",
    );
    const boot = this.boots.get(this.bootId);
    if (boot === undefined) return null;
    let after = this.scanFrom;
    for (;;) {
      const rows = stmt.all(boot, after) as Array<{ seq: number; mono_ns: string }>;
      if (rows.length === 0) break;
      const hit = rows.find((r) => !this.deletes.has(r.seq) && !this.inflight.has(r.seq));
      if (hit) {
        this.cached = { seq: hit.seq, ns: BigInt(hit.mono_ns) };
        break;
      }
      after = (rows[rows.length - 1] as { seq: number }).seq;
    }
    // Rows below the hit (or all scanned, when none) are other boots', inflight or being deleted.
    this.scanFrom = this.cached ? this.cached.seq - 1 : after;
    return this.cached;
  }

  /** Forget the cached row when `seq` (or, with no seq, anything) may change it. */
  touch(seq?: number): void {
    if (seq === undefined || this.cached?.seq === seq) this.cached = undefined;
  }

  /** A row at `seq` counts as unsent again (an eviction was undone): scan from below it. */
  rewindTo(seq: number): void {
    this.scanFrom = Math.min(this.scanFrom, seq - 1);
  }

  /** A commit wrote new rows: "none on disk" no longer holds. */
  rowsWritten(): void {
    if (this.cached === null) this.cached = undefined;
  }
}
