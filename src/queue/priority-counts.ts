/**
 * Rows and payload bytes per priority, persisted in queue.db so that opening a queue costs
 * O(priorities), not a scan of the backlog (a GROUP BY over 1 M rows took 10.8 s on this machine —
 * many times that on an SD card, against systemd's start timeout).
 *
 *   priority_counts(priority INTEGER PRIMARY KEY, rows INTEGER, bytes INTEGER) WITHOUT ROWID
 *
 * Kept by triggers on readings (insert, delete, a change of priority or bytes), so every writer —
 * the service's commits and evictions, `queue dead-letter requeue|drop`, an older fieldrelay that
 * knows nothing of the table — keeps it exact inside its own transaction. Not a schema migration
 * (no user_version bump): an older build still opens the file, and its writes still count.
 *
 *   open ─ table and triggers present, no lost state ─► READ the table (O(priorities))
 *        └ missing (first open after the upgrade), or lost state found
 *                     ─► REBUILD in one transaction (create + fill from GROUP BY: O(rows), once)
 *                          └ cannot write (full disk, read-only card) ─► COUNT read-only (as before)
 */
import type { Database } from "bun:sqlite";

export interface PriorityCount {
  priority: number;
  rows: number;
  bytes: number;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS priority_counts (
    priority INTEGER PRIMARY KEY,
    rows INTEGER NOT NULL,
    bytes INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TRIGGER IF NOT EXISTS priority_counts_insert AFTER INSERT ON readings BEGIN
    INSERT INTO priority_counts(priority, rows, bytes) VALUES (NEW.priority, 1, NEW.bytes)
      ON CONFLICT(priority) DO UPDATE SET rows = rows + 1, bytes = bytes + excluded.bytes;
  END;
  CREATE TRIGGER IF NOT EXISTS priority_counts_delete AFTER DELETE ON readings BEGIN
    UPDATE priority_counts SET rows = rows - 1, bytes = bytes - OLD.bytes WHERE priority = OLD.priority;
  END;
  CREATE TRIGGER IF NOT EXISTS priority_counts_update AFTER UPDATE OF priority, bytes ON readings BEGIN
    UPDATE priority_counts SET rows = rows - 1, bytes = bytes - OLD.bytes WHERE priority = OLD.priority;
    INSERT INTO priority_counts(priority, rows, bytes) VALUES (NEW.priority, 1, NEW.bytes)
      ON CONFLICT(priority) DO UPDATE SET rows = rows + 1, bytes = bytes + excluded.bytes;
  END;`;

const PARTS = [
  "priority_counts",
  "priority_counts_insert",
  "priority_counts_delete",
  "priority_counts_update",
];

const COUNT_ROWS =
  "SELECT priority, count(*) AS rows, coalesce(sum(bytes), 0) AS bytes FROM readings GROUP BY priority";

/** True when the table and all its triggers are in the schema. */
export function hasPriorityCounts(db: Database): boolean {
  const n = (
    db
      .query(`SELECT count(*) AS n FROM sqlite_master WHERE name IN (${PARTS.map(() => "?").join(",")})`)
      .get(...PARTS) as { n: number }
  ).n;
  return n === PARTS.length;
}

/**
 * The per-priority rows and bytes of queue.db. `rebuild` forces a recount (after lost state).
 * `how` says which path ran (for the open log line and tests).
 */
export function loadPriorityCounts(
  db: Database,
  rebuild = false,
): { counts: PriorityCount[]; how: "read" | "rebuilt" | "counted"; error?: unknown } {
  if (!rebuild && hasPriorityCounts(db))
    return {
      counts: db
        .query("SELECT priority, rows, bytes FROM priority_counts WHERE rows > 0")
        .all() as PriorityCount[],
      how: "read",
    };
  try {
    db.transaction(() => {
      db.exec(SCHEMA);
      db.exec("DELETE FROM priority_counts");
      db.exec(`INSERT INTO priority_counts(priority, rows, bytes) ${COUNT_ROWS}`);
    })();
    return {
      counts: db
        .query("SELECT priority, rows, bytes FROM priority_counts WHERE rows > 0")
        .all() as PriorityCount[],
      how: "rebuilt",
    };
  } catch (error) {
    // Nothing at open may need a write (a full disk or a read-only card must still start): count.
    return { counts: db.query(COUNT_ROWS).all() as PriorityCount[], how: "counted", error };
  }
}
