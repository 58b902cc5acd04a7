/**
 * Opening the queue file: checks of the data dir that name the path and the fix, and the
 * quarantine of a corrupt or non-SQLite file (renamed `<path>.corrupt-<boot>-<n>`, never deleted,
 * never renamed over an earlier quarantine).
 *
 * PRAGMA quick_check reads the whole file (seconds on an SD card, against systemd's start
 * timeout), so it runs only when the last run did not close cleanly: a clean close removes the
 * -wal file, so a non-empty -wal at open means a crash or power cut (or FIELDRELAY_QUEUE_CHECK=1).
 */
import { Database, type SQLiteError } from "bun:sqlite";
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "../log/index.ts";
import { QueueError } from "./errors.ts";
import { SEQ_RESERVED_KEY } from "./schema.ts";
import { describeStorageFault, isStorageFault, mountOf } from "./storage-fault.ts";

/** The card or its file system failed: a QueueError naming file, device and mount (never a quarantine). */
export function storageFaultError(path: string, cause: unknown): QueueError {
  return new QueueError("storage-fault", describeStorageFault(path, cause), { context: { path }, cause });
}

export function isSqliteError(e: unknown, code: string): boolean {
  return e instanceof Error && e.name === "SQLiteError" && (e as SQLiteError).code === code;
}

/**
 * A quarantine suffix that no earlier one has: `.corrupt-<first 8 of boot id>-<n>` with the
 * lowest n for which none of the file and its -wal/-shm exist. A wall clock cannot be used: an
 * offline device starts every boot at the same epoch.
 */
export function quarantineSuffix(path: string, bootId: string): string {
  const boot = bootId.replace(/[^0-9a-zA-Z]/g, "").slice(0, 8) || "boot";
  for (let n = 1; ; n++) {
    const suffix = `.corrupt-${boot}-${n}`;
    if (!["", "-wal", "-shm"].some((ext) => existsSync(path + suffix + ext))) return suffix;
  }
}

/** Check the data dir before SQLite does, so the error names the path and the fix. */
export function checkDataDir(path: string): void {
  const dir = dirname(path);
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(dir);
  } catch (error) {
    if (isStorageFault(error)) throw storageFaultError(path, error);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOTDIR") {
      throw new QueueError(
        "dir-not-directory",
        `queue path ${path}: a parent of ${dir} is a file, not a directory — set queue.path to a file inside a writable directory`,
        { context: { path, dir }, cause: error },
      );
    }
    throw new QueueError(
      "dir-missing",
      `queue directory ${dir} does not exist — create it (install -d -o fieldrelay ${dir}) or set queue.path`,
      { context: { path, dir }, cause: error },
    );
  }
  if (!st.isDirectory()) {
    throw new QueueError(
      "dir-not-directory",
      `queue directory ${dir} is not a directory — set queue.path to a file inside a writable directory`,
      { context: { path, dir } },
    );
  }
  let target: ReturnType<typeof statSync> | undefined;
  try {
    target = statSync(path);
  } catch {}
  if (target?.isDirectory()) {
    throw new QueueError(
      "path-is-directory",
      `queue.path ${path} is a directory — set queue.path to a file inside it, e.g. ${path.replace(/\/+$/, "")}/queue.db`,
      { context: { path } },
    );
  }
}

export function readOnlyError(path: string, cause: unknown): QueueError {
  const dir = dirname(path);
  // A partition that turned read-only (ext4 does after an I/O error) is no permission problem.
  let mountinfo = "";
  try {
    mountinfo = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {}
  if (mountOf(dir, mountinfo)?.readOnly) return storageFaultError(path, cause);
  return new QueueError(
    "dir-read-only",
    `queue directory ${dir} is not writable by this user — make it writable (chown fieldrelay ${dir}; mount the data partition read-write) or set queue.path`,
    { context: { path, dir }, cause },
  );
}

/** The first bytes of every SQLite 3 database file. */
const SQLITE_MAGIC = "SQLite format 3\0";

/**
 * Open the database, or — when the file is corrupt or not SQLite — move it (and its -wal/-shm)
 * aside as `<path>.corrupt-<UTC>` and start fresh, returning the highest seq we could recover.
 */
export function openOrQuarantine(
  path: string,
  log: Logger,
  bootId: string,
  check: boolean = uncleanShutdown(path),
): { db: Database; recoveredSeq: number } {
  let recoveredSeq = 0;
  if (existsSync(path)) {
    let problem: string | undefined;
    let size = 0;
    try {
      size = statSync(path).size;
    } catch {}
    if (size > 0) {
      const head = Buffer.alloc(16);
      try {
        const fd = openSync(path, "r");
        try {
          readSync(fd, head, 0, 16, 0);
        } finally {
          closeSync(fd);
        }
      } catch (error) {
        // An unreadable card is not a corrupt file: never move it aside for that.
        if (isStorageFault(error)) throw storageFaultError(path, error);
      }
      if (head.toString("latin1") !== SQLITE_MAGIC) problem = "not an SQLite database";
    }
    if (problem === undefined) {
      try {
        const db = new Database(path, { create: false, readwrite: true, strict: true });
        try {
          if (!check) {
            db.query("SELECT count(*) FROM sqlite_master").get(); // reads the header and schema
            return { db, recoveredSeq: 0 };
          }
          const rows = db.query("PRAGMA quick_check").all() as Array<{ quick_check: string }>;
          const verdict = rows.map((r) => r.quick_check).join("; ");
          if (verdict === "ok") {
            rmSync(checkMarkerPath(path), { force: true });
            return { db, recoveredSeq: 0 };
          }
          problem = verdict;
        } catch (error) {
          if (isStorageFault(error)) {
            db.close(false);
            throw storageFaultError(path, error);
          }
          problem = error instanceof Error ? error.message : String(error);
        }
        recoveredSeq = salvageSeq(db);
        db.close(false);
      } catch (error) {
        if (error instanceof QueueError) throw error;
        if (isSqliteError(error, "SQLITE_CANTOPEN") || isSqliteError(error, "SQLITE_READONLY"))
          throw readOnlyError(path, error);
        if (isStorageFault(error)) throw storageFaultError(path, error);
        problem = error instanceof Error ? error.message : String(error);
      }
    }
    const suffix = quarantineSuffix(path, bootId);
    const moved: string[] = [];
    for (const ext of ["", "-wal", "-shm"]) {
      if (existsSync(path + ext)) {
        try {
          renameSync(path + ext, path + suffix + ext);
        } catch (error) {
          if (isStorageFault(error)) throw storageFaultError(path, error);
          throw error;
        }
        moved.push(path + suffix + ext);
      }
    }
    rmSync(checkMarkerPath(path), { force: true });
    log.error(
      { path, movedTo: moved, problem, recoveredSeq },
      "queue database is corrupt; moved it aside (not deleted) and started a fresh queue",
    );
  }
  try {
    return { db: new Database(path, { create: true, readwrite: true, strict: true }), recoveredSeq };
  } catch (error) {
    if (isSqliteError(error, "SQLITE_CANTOPEN") || isSqliteError(error, "SQLITE_READONLY"))
      throw readOnlyError(path, error);
    if (isStorageFault(error)) throw storageFaultError(path, error);
    throw new QueueError("open-failed", `cannot open queue database ${path}: ${String(error)}`, {
      context: { path },
      cause: error,
    });
  }
}

/**
 * `<path>.check`: written when a running queue met damage in the file (SQLITE_CORRUPT while
 * reading or committing). Opening the file does not read every row any more (per-priority counts
 * are stored), so damage deep in a file closed cleanly is found only when its rows are read; the
 * marker makes the next start check the file in full and move it aside. Removed once checked.
 */
export function checkMarkerPath(path: string): string {
  return `${path}.check`;
}

/** A non-empty -wal beside the file: the last writer did not close cleanly (or a check was asked for). */
export function uncleanShutdown(path: string): boolean {
  if (process.env.FIELDRELAY_QUEUE_CHECK === "1") return true;
  if (existsSync(checkMarkerPath(path))) return true;
  try {
    return statSync(`${path}-wal`).size > 0;
  } catch {
    return false;
  }
}

/** Best effort: the highest seq a damaged database still admits to. */
function salvageSeq(db: Database): number {
  let best = 0;
  try {
    const m = db.query("SELECT value FROM meta WHERE key = ?").get(SEQ_RESERVED_KEY) as {
      value: number;
    } | null;
    if (m) best = Math.max(best, m.value);
  } catch {}
  try {
    const r = db.query("SELECT max(seq) AS s FROM readings").get() as { s: number | null } | null;
    if (r?.s) best = Math.max(best, r.s);
  } catch {}
  return best;
}

/** Ask the next open for a full check (see checkMarkerPath); false when even that cannot be written. */
export function requestCheck(path: string, why: string): boolean {
  try {
    writeFileSync(checkMarkerPath(path), `${why}\n`);
    return true;
  } catch {
    return false;
  }
}
