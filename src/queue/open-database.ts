/**
 * The open sequence up to a queue's first read of its books: everything SqliteQueue needs before
 * it can be constructed, in this order (each step names the file and the fix when it fails):
 *
 *   history (read before the lock is taken) ─► open or quarantine (open.ts)
 *     ─► pragmas (WAL, synchronous, checkpoint size) ─► migrate (schema.ts), dead-letter table
 *     ─► seq floor: the highest of WAL recovery, side file, meta, max(seq); lost state (lost-state.ts)
 *     ─► seq side file (seq-file.ts; a full disk at the very first start leaves it absent)
 *
 * Writes nothing unless the file is new (or its seq side file is), so a queue on a full disk
 * opens and keeps delivering. The writer lock and loading the books stay with SqliteQueue.
 */
import type { Database } from "bun:sqlite";
import { readFileSync, statSync } from "node:fs";
import type { Logger } from "../log/index.ts";
import { ensureDeadLetterTable } from "./dead-letter.ts"; // #12 dead letters
import { QueueError } from "./errors.ts";
import { lockPath } from "./lock.ts";
import { type LostState, lostState, seqFloorAfterTotalLoss } from "./lost-state.ts";
import { isSqliteError, openOrQuarantine, readOnlyError, storageFaultError } from "./open.ts";
import { migrate, SchemaTooNewError, SEQ_RESERVED_KEY } from "./schema.ts";
import { readSeqFile, SeqFile } from "./seq-file.ts";
import { isStorageFault } from "./storage-fault.ts";

/** What a queue left in its directory before this open (lost-state.ts judges it). */
export interface OpenHistory {
  /** A lock file with a pid in it: a queue lived here before, whatever else is gone now. */
  lived: boolean;
  /** queue.db's size before this open (undefined: absent). */
  before: number | undefined;
}

export interface OpenDatabaseOptions {
  path: string;
  log: Logger;
  bootId: string;
  durability?: "full" | "normal";
  maxPageCount?: number;
  seqBlock?: number;
}

export interface OpenedDatabase {
  db: Database;
  /** The highest seq ever handed out or reserved: seqs start above it. */
  floor: number;
  seqFile: SeqFile | undefined;
  lost: LostState;
  /** The side file's and meta's reservations, for the lost-state log line. */
  sideFile: number;
  metaReserved: number | undefined;
}

/** Read the history; call before the lock is taken (taking it creates the lock file). */
export function readOpenHistory(dbPath: string): OpenHistory {
  return { lived: lockFileUsed(dbPath), before: fileSize(dbPath) };
}

function fileSize(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

function lockFileUsed(dbPath: string): boolean {
  try {
    return readFileSync(lockPath(dbPath), "utf8").trim().length > 0;
  } catch {
    return false;
  }
}

/**
 * Open the database and find its seq floor, with the writer lock held. `check` runs the full
 * check (and quarantine) even after a clean shutdown. Throws a QueueError; the database is closed
 * on every failure.
 */
export function openDatabase(
  options: OpenDatabaseOptions,
  history: OpenHistory,
  check?: boolean,
): OpenedDatabase {
  const { db, recoveredSeq } = openOrQuarantine(options.path, options.log, options.bootId, check);
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec("PRAGMA page_size = 1024"); // only takes effect on a new, empty file (see schema.ts)
    const mode = db.query("PRAGMA journal_mode = WAL").get() as { journal_mode: string };
    if (mode.journal_mode !== "wal") throw new Error(`journal_mode is ${mode.journal_mode}, not wal`);
    db.exec(`PRAGMA synchronous = ${options.durability === "normal" ? "NORMAL" : "FULL"}`);
    // Checkpoint every 8 MiB of WAL (8192 pages of 1 KiB): fewer, larger checkpoints, since each
    // page is copied once per checkpoint however often it was rewritten; keep the WAL file at
    // most 16 MiB after one.
    db.exec("PRAGMA wal_autocheckpoint = 8192");
    db.exec("PRAGMA journal_size_limit = 16777216");
    if (options.maxPageCount !== undefined) db.exec(`PRAGMA max_page_count = ${options.maxPageCount}`);
    const schema = migrate(db);
    if (schema.newerVersion !== undefined)
      options.log.warn(
        { path: options.path, schemaVersion: schema.newerVersion },
        "queue.db was written by a newer fieldrelay; this build uses it as it is (a downgrade keeps the queue)",
      );
    ensureDeadLetterTable(db); // #12 dead letters: own table, not a migration (see dead-letter.ts)
  } catch (error) {
    db.close(false);
    if (isSqliteError(error, "SQLITE_READONLY") || isSqliteError(error, "SQLITE_CANTOPEN"))
      throw readOnlyError(options.path, error);
    if (isStorageFault(error)) throw storageFaultError(options.path, error);
    if (error instanceof SchemaTooNewError)
      throw new QueueError("schema-too-new", `queue database ${options.path}: ${error.message}`, {
        hint: `a newer fieldrelay changed the queue's format; install a build that knows schema ${error.floor} or later (the queue is kept as it is)`,
        context: { path: options.path, schemaVersion: error.version },
        cause: error,
      });
    throw new QueueError("open-failed", `cannot open queue database ${options.path}: ${String(error)}`, {
      context: { path: options.path },
      cause: error,
    });
  }
  let meta: { value: number } | null;
  let maxSeq: number;
  try {
    meta = db.query("SELECT value FROM meta WHERE key = ?").get(SEQ_RESERVED_KEY) as {
      value: number;
    } | null;
    maxSeq = (db.query("SELECT max(seq) AS s FROM readings").get() as { s: number | null }).s ?? 0;
  } catch (error) {
    db.close(false);
    throw isStorageFault(error) ? storageFaultError(options.path, error) : error;
  }
  const sideFile = readSeqFile(options.path);
  let floor = Math.max(recoveredSeq, sideFile, meta?.value ?? 0, maxSeq);
  const lost = lostState({
    lived: history.lived,
    sizeBefore: history.before,
    sideFile,
    metaReserved: meta?.value,
    recoveredSeq,
    seqBlock: options.seqBlock ?? 4096,
  });
  if (lost?.kind === "all") floor = Math.max(floor, seqFloorAfterTotalLoss(Date.now()));
  let seqFile: SeqFile | undefined;
  try {
    seqFile = SeqFile.open(options.path, floor);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EACCES" || code === "EROFS") {
      db.close(false);
      throw readOnlyError(options.path, error);
    }
    // A full disk at the very first start: no seq can be reserved yet; captures are refused
    // (and say why) until the side file can be created.
    options.log.error({ err: error, path: options.path }, "queue cannot create its seq side file");
  }
  return { db, floor, seqFile, lost, sideFile, metaReserved: meta?.value };
}
