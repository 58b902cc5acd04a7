/**
 * A commit's answer to SQLITE_FULL. Deleting rows never shrinks the file, and a transaction that
 * fails is rolled back, deletes included — so an eviction is kept only if the commit it was made
 * for succeeds. The steps are injected (the queue owns the database and the books); this module
 * is the order and the rule:
 *
 *   TRY ─ ok ──────────────────────────────────────────────────────────► DONE
 *    └ SQLITE_FULL ─► CHECKPOINT(TRUNCATE), TRY ─ ok ─────────────────────► DONE
 *                      └ SQLITE_FULL ─► EVICT what the batch needs ──┐
 *                                        │ nothing may go ─► FAIL    │
 *                                        └─ TRY ─ ok ─► KEEP (logged) ─► DONE
 *                                              └ fails ─► UNDO ─► FAIL (nothing counted evicted)
 *   any other error at any step ─► FAIL at once (after UNDO if an eviction was made)
 */
import { isSqliteError } from "./open.ts";

export interface FullDiskSteps<T, E> {
  /** Run the commit's transaction. */
  attempt(): T;
  /** Checkpoint the WAL into the database and truncate it (gives its blocks back). */
  checkpoint(): void;
  /** Evict, tentatively, what the batch needs from lower priorities; undefined when nothing may go. */
  evict(): E | undefined;
  /** The retry succeeded: the eviction stands (count and log it). */
  keep(eviction: E): void;
  /** The retry failed: put the rows back. */
  undo(eviction: E): void;
}

export function commitThroughFullDisk<T, E>(steps: FullDiskSteps<T, E>): T {
  let full: unknown;
  try {
    return steps.attempt();
  } catch (error) {
    if (!isSqliteError(error, "SQLITE_FULL")) throw error;
    full = error;
  }
  try {
    steps.checkpoint();
    return steps.attempt();
  } catch (error) {
    if (!isSqliteError(error, "SQLITE_FULL")) throw error;
    full = error;
  }
  const eviction = steps.evict();
  if (eviction === undefined) throw full;
  try {
    const result = steps.attempt();
    steps.keep(eviction);
    return result;
  } catch (error) {
    steps.undo(eviction);
    throw error;
  }
}
