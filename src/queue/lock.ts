/**
 * The single-writer lock: `<queue.db>.lock`, held with flock(LOCK_EX) for as long as the queue is
 * open for writing. The kernel drops it when the process dies (kill -9 included), so there is no
 * stale lock to clean up. The file holds the holder's pid as text, only so that the refusal can
 * name it; the file itself is never deleted (deleting a lock file races with the next locker).
 *
 * Read-only tools (`fieldrelay queue stats|peek|export`) do not take the lock: a WAL reader never
 * blocks the writer.
 */
import { closeSync, constants, ftruncateSync, openSync, readFileSync, writeSync } from "node:fs";
import { flock, LOCK_EX, LOCK_NB } from "../hal/libc/index.ts";
import { QueueError } from "./errors.ts";
import { readOnlyError, storageFaultError } from "./open.ts";

export function lockPath(dbPath: string): string {
  return `${dbPath}.lock`;
}

export interface QueueLock {
  release(): void;
}

/** Take the writer lock on dbPath, or throw QueueError "locked" naming the holder's pid. */
export function acquireQueueLock(dbPath: string): QueueLock {
  const path = lockPath(dbPath);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EACCES" || code === "EROFS" || code === "EPERM") throw readOnlyError(dbPath, error);
    if (code === "EIO") throw storageFaultError(dbPath, error);
    throw new QueueError(
      "open-failed",
      `cannot open the queue lock file ${path}: ${(error as Error).message}`,
      {
        context: { path },
        cause: error,
      },
    );
  }
  let locked: boolean;
  try {
    locked = flock(fd, LOCK_EX | LOCK_NB, path);
  } catch (error) {
    closeSync(fd);
    throw new QueueError("open-failed", `cannot lock ${path}: ${(error as Error).message}`, {
      context: { path },
      cause: error,
    });
  }
  if (!locked) {
    closeSync(fd);
    let holder = "";
    try {
      holder = readFileSync(path, "utf8").trim();
    } catch {}
    const who = /^\d+$/.test(holder) ? `pid ${holder}` : "another process";
    throw new QueueError(
      "locked",
      `queue ${dbPath} is in use by another fieldrelay (${who}) — stop it first (systemctl stop fieldrelay), or give this one its own queue.path`,
      { context: { path: dbPath, holder } },
    );
  }
  // Best effort: on a full disk the pid may not fit, and the lock still holds without it.
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
  } catch {}
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      closeSync(fd); // closing the last fd of the open file description releases the flock
    },
  };
}
