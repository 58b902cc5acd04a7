/**
 * Lost state, detected at open from what survives beside queue.db (pure: the caller gathers the
 * facts). Three files remember a queue: queue.db (+ -wal), queue.db.seq (the reserved seq mark,
 * fsynced before any seq of a block is handed out) and queue.db.lock (never deleted, holds the
 * last writer's pid).
 *
 *   "db":   the side file remembers reserved seqs, but queue.db is missing, empty (0 bytes after
 *           a non-empty one) or has no seq mark — its readings are gone.
 *   "wal":  queue.db's seq mark is more than one block behind the side file — committed
 *           transactions are gone (a -wal deleted after kill -9, or a restored old copy).
 *   "all":  the lock file says a queue lived here, but neither queue.db nor the side file is
 *           left. Seqs then restart above wall-clock seconds × 1000 (when the clock is plausible),
 *           so they cannot repeat ones handed out before unless that queue averaged more than
 *           1000 readings/s; consumers also see the jump.
 *
 * Every case is logged at error and counted (fieldrelay_queue_state_lost_total).
 */

export interface LostStateFacts {
  /** queue.db.lock existed with a pid in it. */
  lived: boolean;
  /** Size of queue.db before open; undefined when absent. */
  sizeBefore: number | undefined;
  /** Reserved mark in queue.db.seq (0 when absent). */
  sideFile: number;
  /** meta.seq_reserved in queue.db; undefined when absent. */
  metaReserved: number | undefined;
  /** Seq salvaged from a quarantined (corrupt) file. */
  recoveredSeq: number;
  seqBlock: number;
}

export type LostState = { kind: "db" | "wal" | "all"; detail: string } | undefined;

export function lostState(f: LostStateFacts): LostState {
  if (f.sideFile > 0 && f.metaReserved === undefined && f.recoveredSeq === 0) {
    const how =
      f.sizeBefore === undefined
        ? "is missing"
        : f.sizeBefore === 0
          ? "is empty (0 bytes)"
          : "has no seq mark";
    return {
      kind: "db",
      detail: `queue.db ${how} although seqs up to ${f.sideFile} were handed out; its undelivered readings are gone`,
    };
  }
  if (f.metaReserved !== undefined && f.sideFile - f.metaReserved > f.seqBlock) {
    return {
      kind: "wal",
      detail: `queue.db's seq mark ${f.metaReserved} is more than one block behind the side file's ${f.sideFile}: committed transactions are gone (was queue.db-wal deleted?)`,
    };
  }
  if (f.lived && f.sideFile === 0 && f.metaReserved === undefined && f.recoveredSeq === 0) {
    return {
      kind: "all",
      detail: "queue.db and queue.db.seq are both gone although a queue lived here (queue.db.lock remains)",
    };
  }
  return undefined;
}

/** 2020-01-01: a wall clock before it is not believed (an offline Pi starts at its build date or 1970). */
const PLAUSIBLE_MS = Date.UTC(2020, 0, 1);

/** The first seq after total loss: wall-clock seconds × 1000 when the clock is plausible, else 0. */
export function seqFloorAfterTotalLoss(wallMs: number): number {
  return wallMs >= PLAUSIBLE_MS ? Math.floor(wallMs / 1000) * 1000 : 0;
}
