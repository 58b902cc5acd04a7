/**
 * Dead letters: readings the broker refused for good, kept aside so that they cannot block the
 * queue. A reading goes here when the broker answers its PUBLISH with a permanent MQTT 5 reason
 * code (e.g. 0x87 not authorized by an ACL), or when the broker dropped the connection every time
 * it was the only message in flight (a "poison pill", e.g. a topic the broker calls malformed).
 *
 *   dead_letters(
 *     seq        INTEGER PRIMARY KEY  -- the reading's own seq (a requeue sends it under the same seq)
 *     stream, priority, qos, boot_id, mono_ns, wall_ms, tq, vals, anomaly  -- the reading as captured
 *     reason     TEXT    NOT NULL     -- why, e.g. "broker refused the PUBLISH: 0x87 Not authorized"
 *     dead_at_ms INTEGER NOT NULL     -- wall time of the move: shown to the operator, never ordered by
 *   )
 *
 * Life of a dead letter:
 *
 *   STORED/PENDING reading ──deadLetter(seqs, reason)──► DEAD (row here, in its own transaction,
 *        before the reading is dropped from `readings` like an ack; a crash in between leaves it in
 *        both tables and the next refusal replaces this row: INSERT OR REPLACE on seq)
 *   DEAD ──`fieldrelay queue dead-letter drop`──► gone (the operator's decision, after export)
 *   DEAD ──`fieldrelay queue dead-letter requeue`──► STORED again (same seq, inflight 0), sent at
 *        the next start of `fieldrelay run` (requeue and drop take the queue's writer lock, so they
 *        refuse while the service runs: the running queue keeps its bookkeeping in RAM)
 *
 * The table is created with CREATE TABLE IF NOT EXISTS by the writer, not by a migration, so the
 * readings schema and its version are untouched and older builds simply ignore it.
 *
 * Poison strikes live beside them, in poison_strikes(seq, strikes) (schema migration 2): the
 * publisher's suspects — readings left unacked when a connection was lost — and how often each was
 * alone in flight when the broker dropped the connection early. Kept on disk so that a device that
 * crash-loops (one connection per life) still strikes the reading out instead of sending it first
 * forever. The publisher replaces the whole set when it changes (a lost session, suspects cleared):
 * a few rows, written rarely. A seq that has left the queue since is ignored on load.
 */
import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { QueueError } from "./errors.ts";
import { acquireQueueLock } from "./lock.ts";
import { type ReadingRow, rowToReading } from "./rows.ts";
import { payloadBytes } from "./schema.ts";
import type { QueuedReading } from "./types.ts";

export const DEAD_LETTER_TABLE = `CREATE TABLE IF NOT EXISTS dead_letters (
  seq INTEGER PRIMARY KEY,
  stream TEXT NOT NULL,
  priority INTEGER NOT NULL,
  qos INTEGER NOT NULL,
  boot_id TEXT NOT NULL,
  mono_ns INTEGER NOT NULL,
  wall_ms INTEGER NOT NULL,
  tq TEXT NOT NULL,
  vals TEXT NOT NULL,
  anomaly INTEGER NOT NULL,
  reason TEXT NOT NULL,
  dead_at_ms INTEGER NOT NULL
)`;

/** DeadLetter is one refused reading with the reason it was moved aside. */
export interface DeadLetter extends QueuedReading {
  reason: string;
  /** Wall time of the move (ms since the epoch). */
  deadAtMs: number;
}

/** A dead_letters row: the readings columns (without bytes and inflight) plus why and when. */
type DeadRow = ReadingRow & { reason: string; dead_at_ms: number };

const COLUMNS =
  "seq, stream, priority, qos, boot_id, CAST(mono_ns AS TEXT) AS mono_ns, wall_ms, tq, vals, anomaly, reason, dead_at_ms";

function toDeadLetter(row: DeadRow): DeadLetter {
  return { ...rowToReading(row), reason: row.reason, deadAtMs: row.dead_at_ms };
}

function hasTable(db: Database): boolean {
  return (
    db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dead_letters'").get() !== null
  );
}

/** Create the table when absent (the writer calls this at open). */
export function ensureDeadLetterTable(db: Database): void {
  db.exec(DEAD_LETTER_TABLE);
}

/** Store readings as dead letters in one transaction. */
export function insertDeadLetters(
  db: Database,
  readings: readonly QueuedReading[],
  reason: string,
  nowWallMs: number,
): void {
  const insert = db.query(
    `INSERT OR REPLACE INTO dead_letters(${COLUMNS.replace("CAST(mono_ns AS TEXT) AS mono_ns", "mono_ns")})
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  db.transaction(() => {
    for (const r of readings) {
      insert.run(
        r.seq,
        r.stream,
        r.priority,
        r.qos,
        r.bootId,
        r.monoNs,
        r.wallMs,
        r.tq,
        JSON.stringify(r.values),
        r.anomaly ? 1 : 0,
        reason,
        Math.round(nowWallMs),
      );
    }
  })();
}

export function countDeadLetters(db: Database): number {
  if (!hasTable(db)) return 0;
  return (db.query("SELECT count(*) AS n FROM dead_letters").get() as { n: number }).n;
}

/** Every dead letter in seq order (an empty list when the table does not exist yet). */
export function* listDeadLetters(db: Database): IterableIterator<DeadLetter> {
  if (!hasTable(db)) return;
  for (const row of db.query(`SELECT ${COLUMNS} FROM dead_letters ORDER BY seq`).iterate())
    yield toDeadLetter(row as DeadRow);
}

/**
 * Move dead letters back into `readings` under their own seq, inflight 0, in one transaction.
 * `seqs` undefined means all. Returns the seqs moved (unknown seqs are skipped).
 */
export function requeueDeadLetters(db: Database, seqs: readonly number[] | undefined): number[] {
  if (!hasTable(db)) return [];
  const rows = (
    seqs === undefined
      ? db.query(`SELECT ${COLUMNS} FROM dead_letters ORDER BY seq`).all()
      : seqs
          .map((s) => db.query(`SELECT ${COLUMNS} FROM dead_letters WHERE seq = ?`).get(s))
          .filter((r) => r !== null)
  ) as DeadRow[];
  const bootOf = db.query("SELECT id FROM boots WHERE boot_id = ?");
  const addBoot = db.query("INSERT INTO boots(boot_id) VALUES (?)");
  const insert = db.query(
    `INSERT OR IGNORE INTO readings(seq, stream, priority, qos, boot, mono_ns, wall_ms, tq, vals, anomaly, bytes, inflight)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`,
  );
  const remove = db.query("DELETE FROM dead_letters WHERE seq = ?");
  // A requeued reading starts with a clean record: strikes kept from before it was dead-lettered
  // would strike it out again at its first drop.
  const unstrike = hasStrikesTable(db) ? db.query("DELETE FROM poison_strikes WHERE seq = ?") : undefined;
  db.transaction(() => {
    for (const r of rows) {
      let boot = (bootOf.get(r.boot_id) as { id: number } | null)?.id;
      if (boot === undefined) {
        addBoot.run(r.boot_id);
        boot = (bootOf.get(r.boot_id) as { id: number }).id;
      }
      insert.run(
        r.seq,
        r.stream,
        r.priority,
        r.qos,
        boot,
        BigInt(r.mono_ns),
        r.wall_ms,
        r.tq,
        r.vals,
        r.anomaly,
        payloadBytes(r.stream, r.boot_id, r.tq, r.vals),
      );
      remove.run(r.seq);
      unstrike?.run(r.seq);
    }
  })();
  return rows.map((r) => r.seq);
}

/** Delete dead letters for good (after export, when nobody will ever want them). */
export function dropDeadLetters(db: Database, seqs: readonly number[] | undefined): number[] {
  if (!hasTable(db)) return [];
  const all = (db.query("SELECT seq FROM dead_letters ORDER BY seq").all() as Array<{ seq: number }>).map(
    (r) => r.seq,
  );
  const doomed = seqs === undefined ? all : all.filter((s) => seqs.includes(s));
  const del = db.query("DELETE FROM dead_letters WHERE seq = ?");
  db.transaction(() => {
    for (const s of doomed) del.run(s);
  })();
  return doomed;
}

/** DeadLetterFile is the dead-letter table of a queue file, for `fieldrelay queue dead-letter`. */
export interface DeadLetterFile {
  list(): IterableIterator<DeadLetter>;
  count(): number;
  /** Move these seqs (all when undefined) back into the queue; returns the seqs moved. */
  requeue(seqs: readonly number[] | undefined): number[];
  /** Delete these dead letters for good (all when undefined); returns the seqs deleted. */
  drop(seqs: readonly number[] | undefined): number[];
  close(): void;
}

/**
 * Open a queue file's dead letters: read-only, or with `write` (requeue, drop) holding the queue's
 * writer lock, so it refuses while `fieldrelay run` has the queue (its bookkeeping is in RAM).
 */
export function openDeadLetterFile(path: string, write: boolean): DeadLetterFile {
  if (!existsSync(path)) {
    throw new QueueError(
      "db-missing",
      `queue database ${path} does not exist — check queue.path in the config or pass --db PATH`,
      { context: { path } },
    );
  }
  const lock = write ? acquireQueueLock(path) : undefined;
  let db: Database;
  try {
    db = write ? new Database(path, { strict: true }) : new Database(path, { readonly: true, strict: true });
    db.exec("PRAGMA busy_timeout = 5000");
    db.query("SELECT count(*) FROM sqlite_master").get();
  } catch (error) {
    lock?.release();
    throw new QueueError("open-failed", `cannot open queue database ${path}: ${(error as Error).message}`, {
      context: { path },
      cause: error,
    });
  }
  return {
    list: () => listDeadLetters(db),
    count: () => countDeadLetters(db),
    requeue: (seqs) => requeueDeadLetters(db, seqs),
    drop: (seqs) => dropDeadLetters(db, seqs),
    close: () => {
      db.close(false);
      lock?.release();
    },
  };
}

/** The kept poison strikes (seq → strikes); empty on a file older than migration 2. */
function hasStrikesTable(db: Database): boolean {
  return (
    db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'poison_strikes'").get() !== null
  );
}

export function loadStrikes(db: Database): Map<number, number> {
  const out = new Map<number, number>();
  if (!hasStrikesTable(db)) return out;
  for (const row of db.query("SELECT seq, strikes FROM poison_strikes").all() as Array<{
    seq: number;
    strikes: number;
  }>)
    out.set(row.seq, row.strikes);
  return out;
}

/** Replace the kept poison strikes with these, in one transaction (an empty map clears them). */
export function saveStrikes(db: Database, strikes: ReadonlyMap<number, number>): void {
  const insert = db.query("INSERT INTO poison_strikes(seq, strikes) VALUES (?, ?)");
  db.transaction(() => {
    db.exec("DELETE FROM poison_strikes");
    for (const [seq, n] of strikes) insert.run(seq, n);
  })();
}
