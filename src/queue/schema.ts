/**
 * queue.db — the on-disk format of the store-and-forward queue (bun:sqlite, WAL).
 *
 *   readings(
 *     seq            INTEGER PRIMARY KEY  -- per-device, never repeats (see meta.seq_reserved)
 *     stream         TEXT    NOT NULL
 *     priority       INTEGER NOT NULL     -- 1 (lowest) … 10 (highest)
 *     qos            INTEGER NOT NULL
 *     boot           INTEGER NOT NULL     -- capture stamp: boots.id of the boot it was taken in
 *     mono_ns        INTEGER NOT NULL     --   CLOCK_MONOTONIC ns at capture
 *     wall_ms        INTEGER NOT NULL     --   wall time believed at capture
 *     tq             TEXT    NOT NULL     --   ntp | rtc | unsynced
 *     vals           TEXT    NOT NULL     -- the values, JSON
 *     anomaly        INTEGER NOT NULL     -- 0 | 1
 *     bytes          INTEGER NOT NULL     -- payload bytes (what max_bytes budgets)
 *     inflight       INTEGER NOT NULL     -- 1 once handed to the broker (persisted lazily)
 *   )
 *   boots(id INTEGER PRIMARY KEY, boot_id TEXT UNIQUE)       -- boot ids stored once, not per row
 *   readings_v: VIEW of readings joined with boots (boot_id as text) — what readers select from
 *   readings_by_priority ON readings(priority, seq)          -- send order and eviction order
 *   readings_inflight    ON readings(seq) WHERE inflight = 1  -- resend first after a restart
 *   meta(key TEXT PRIMARY KEY, value INTEGER)                -- seq_reserved: highest seq handed out or reserved
 *   anchors(boot_id, mono_ns, wall_ms, source, uncertainty_ms, ppm) -- the clock's anchors (AnchorStore;
 *                                                       compacted by anchor-store.ts)
 *   poison_strikes(seq, strikes)   -- #12: suspects of lost connections and their strikes (dead-letter.ts)
 *   inflight_runs(lo, hi)  -- inflight marks as runs of seqs (inflight.ts; created by the first commit that marks one)
 *
 * Page size 1024: a commit rewrites the partly filled last leaf of the table and of the index,
 * so small pages write fewer bytes per commit (measured: ~40% fewer bytes per reading than 4096
 * at 50 readings per commit). Rows keep no per-row boot_id text for the same reason.
 *
 * Schema version: PRAGMA user_version = MIGRATIONS.length; each migration runs once, in order,
 * in one transaction with the version bump.
 *
 * seq: capture() hands out seqs from a block reserved ahead (seq_reserved). A block is reserved by
 * writing seq_reserved to meta in its own transaction AND to the side file `queue.db.seq`
 * (write + fsync + rename + fsync dir) before any seq of it is used, because a reading can be
 * published — and acked — before its own commit. On start the next seq is
 * max(side file, meta.seq_reserved, max(readings.seq)) + 1, so seqs survive draining to empty,
 * restarts, crashes (which skip the rest of a block: a gap, not a loss) and a corrupt database
 * that had to be moved aside.
 *
 * Life of a reading:
 *
 *   capture() ──► PENDING (RAM, has seq, visible to next())
 *                   │ ack() before commit ────────────────► DELIVERED (never written to disk)
 *                   │ evicted (budget) ───────────────────► EVICTED (counted, logged)
 *                   ▼ deadline / commitMaxRows / flush / close: ONE transaction per batch
 *                 STORED (row, inflight 0|1)
 *                   │ markInflight() → in a run of inflight_runs in the next commit (RAM knows at once)
 *                   │ ack()     → deleted in the next commit ─► DELIVERED
 *                   │ evicted   → deleted in the next commit ─► EVICTED
 *
 * Send order (next()): rows marked inflight first (seq ASC), then priority DESC, seq ASC.
 * Eviction order: priority ASC, seq ASC, never priority ≥ protected_priority.
 * Nothing is deleted or ordered by wall-clock age.
 */
import type { Database } from "bun:sqlite";

export const SEQ_RESERVED_KEY = "seq_reserved";

/** MIGRATIONS[i] brings user_version i to i + 1. Append only; never edit a shipped entry. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE readings (
     seq INTEGER PRIMARY KEY,
     stream TEXT NOT NULL,
     priority INTEGER NOT NULL,
     qos INTEGER NOT NULL,
     boot INTEGER NOT NULL,
     mono_ns INTEGER NOT NULL,
     wall_ms INTEGER NOT NULL,
     tq TEXT NOT NULL,
     vals TEXT NOT NULL,
     anomaly INTEGER NOT NULL DEFAULT 0,
     bytes INTEGER NOT NULL,
     inflight INTEGER NOT NULL DEFAULT 0
   );
   CREATE TABLE boots (id INTEGER PRIMARY KEY, boot_id TEXT NOT NULL UNIQUE);
   CREATE VIEW readings_v AS
     SELECT r.seq, r.stream, r.priority, r.qos, b.boot_id, r.mono_ns, r.wall_ms, r.tq, r.vals,
            r.anomaly, r.bytes, r.inflight
     FROM readings r JOIN boots b ON b.id = r.boot;
   CREATE INDEX readings_by_priority ON readings(priority, seq);
   CREATE INDEX readings_inflight ON readings(seq) WHERE inflight = 1;
   CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
   CREATE TABLE anchors (
     boot_id TEXT NOT NULL,
     mono_ns INTEGER NOT NULL,
     wall_ms INTEGER NOT NULL,
     source TEXT NOT NULL,
     uncertainty_ms REAL NOT NULL
   );
   CREATE INDEX anchors_by_boot ON anchors(boot_id);`,
  // 1 → 2 (#12 hardening): poison-pill strikes kept across restarts (see dead-letter.ts).
  `CREATE TABLE poison_strikes (seq INTEGER PRIMARY KEY, strikes INTEGER NOT NULL) WITHOUT ROWID;`,
  // 2 → 3 (#13 follow-up, time): the RTC's stated rate per anchor (NULL for ntp, system, rtc-set).
  "ALTER TABLE anchors ADD COLUMN ppm REAL;",
];

export function schemaVersion(db: Database): number {
  return (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
}

/**
 * Rollback: a device downgraded to an older build must keep its queue. Each file records in
 * meta.schema_compat the oldest schema version whose code can still use it; an older build opens a
 * newer file as it is when its own version reaches that floor. A migration that an older build
 * would misread (a changed column meaning, a table it must keep in step and would not) adds its
 * version to BREAKING, which lifts the floor. Every migration so far only adds what an older
 * build never reads (poison_strikes; anchors.ppm, NULL when an older build inserts), so the floor
 * is 1. (Builds before this rule refuse any newer file; they cannot be changed.)
 */
export const SCHEMA_COMPAT_KEY = "schema_compat";
const BREAKING: ReadonlySet<number> = new Set<number>();

/** The oldest schema version whose code can use a file at `version` (this build's rule). */
export function compatFloor(version: number): number {
  let floor = 1;
  for (const v of BREAKING) if (v <= version && v > floor) floor = v;
  return floor;
}

/** SchemaTooNewError: the file was written by a build that changed the format beyond this one. */
export class SchemaTooNewError extends Error {
  constructor(
    readonly version: number,
    readonly floor: number,
  ) {
    super(
      `queue schema version ${version} is newer than this fieldrelay understands (${MIGRATIONS.length}), and it needs at least version ${floor}`,
    );
  }
}

export interface MigrateResult {
  /** Set when the file is newer than this build but still usable: its schema version. */
  newerVersion?: number;
}

/**
 * Bring the schema to the newest version this build knows. A newer file is used as it is when
 * its schema_compat allows this build, and refused (SchemaTooNewError) otherwise.
 */
export function migrate(db: Database): MigrateResult {
  const version = schemaVersion(db);
  if (version > MIGRATIONS.length) {
    const floor = readCompat(db) ?? version;
    if (floor > MIGRATIONS.length) throw new SchemaTooNewError(version, floor);
    return { newerVersion: version };
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v] as string);
      db.exec(`PRAGMA user_version = ${v + 1}`);
      writeCompat(db, compatFloor(v + 1));
    })();
  }
  // A file migrated before the rule has no floor yet: write it once (one small write per file).
  if (version === MIGRATIONS.length && readCompat(db) !== compatFloor(version)) {
    try {
      writeCompat(db, compatFloor(version));
    } catch {
      // Advisory: a file that takes no writes now (read-only, failing card) gets it at a later start.
    }
  }
  return {};
}

function readCompat(db: Database): number | undefined {
  const row = db.query("SELECT value FROM meta WHERE key = ?").get(SCHEMA_COMPAT_KEY) as {
    value: number;
  } | null;
  return row?.value;
}

function writeCompat(db: Database, floor: number): void {
  db.query("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)").run(SCHEMA_COMPAT_KEY, floor);
}

/** Payload bytes of a reading as stored: what max_bytes budgets. */
export function payloadBytes(stream: string, bootId: string, tq: string, valsJson: string): number {
  // Text columns as UTF-8 plus 8 bytes for each integer column (seq, priority, qos, mono_ns,
  // wall_ms, anomaly, bytes, inflight).
  return Buffer.byteLength(stream) + Buffer.byteLength(bootId) + tq.length + Buffer.byteLength(valsJson) + 64;
}
