/**
 * The seq side file `<queue.db>.seq`: one decimal line, the highest seq reserved. A copy of
 * meta.seq_reserved outside the database, so seqs never repeat even when a corrupt database has
 * to be moved aside. Written atomically: write a temp file, fsync, rename over, fsync the dir.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname } from "node:path";

export function seqFilePath(dbPath: string): string {
  return `${dbPath}.seq`;
}

/** The reserved high-water mark from the side file, or 0 when absent or unreadable. */
export function readSeqFile(dbPath: string): number {
  try {
    const text = readFileSync(seqFilePath(dbPath), "utf8").trim();
    const n = Number(text);
    return /^\d+$/.test(text) && Number.isSafeInteger(n) ? n : 0;
  } catch {
    return 0;
  }
}

export function writeSeqFile(dbPath: string, reserved: number): void {
  const path = seqFilePath(dbPath);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w", 0o644);
  try {
    writeSync(fd, `${reserved}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(dirname(path), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
