/**
 * The write-behind buffer: readings that have a seq but are not on disk yet, in seq order (Map
 * keeps insertion order), with their payload bytes (what a commit will add to the file) and a
 * bounded memory of seqs evicted before their commit (so whenCaptured() can say so).
 *
 *   capture() ─► PENDING (visible to next())
 *                  ├ ack() before commit ─────► DELIVERED (never written)
 *                  ├ evicted (budget, RAM cap) ─► EVICTED (remembered in `lost`)
 *                  └ commit ok ────────────────► STORED
 *   store()   ─► ADMITTED (visible to next() at once; QoS 0: HELD, invisible until committed;
 *                  never evicted while its batch is open)
 *                  ├ ack() before commit ─────► DELIVERED  ┐ the batch settles ok once every
 *                  ├ commit ok ────────────────► STORED     ┘ reading of it is one of these
 *                  └ commit fails, none of the batch handed to the broker
 *                                  ───────────► WITHDRAWN, its batch settles refused
 *                    (some handed out: the batch waits for their acks or a later commit, up to
 *                     its deadline; then the rest is withdrawn and the batch is refused)
 *
 * The buffer only keeps the books; the queue decides the transitions.
 */
import type { Reading, StoreResult } from "./types.ts";

/** One store() call: its readings are captured (committed or acked) together or withdrawn together. */
export interface HeldBatch {
  seqs: number[];
  settle: (result: StoreResult) => void;
  /** Disk rows evicted to make room for it: kept if it is captured, put back if it is withdrawn. */
  evictions: Tentative[];
  /** Readings of it neither committed nor acked yet; the batch settles ok when this reaches 0. */
  outstanding: number;
  settled: boolean;
  /** When it was admitted (CLOCK_MONOTONIC ms): its gathering window runs from here. */
  admittedMonoMs?: number;
  /** Armed when a commit failed while some of it was with the broker: when it gives up. */
  deadline?: unknown;
  /** The waiter each of its readings carries (counts `outstanding` down). */
  waiter?: { resolve: () => void; reject: (e: Error) => void };
}

/** A disk row evicted for a commit that may still fail, remembered so the eviction can be undone. */
export interface Tentative {
  seq: number;
  /** Why: max_rows, max_bytes, min_free_disk_mb or disk_full. */
  reason: string;
  priority: number;
  bytes: number;
  inflight: boolean;
  flagged: boolean;
}

export interface Pending {
  seq: number;
  reading: Reading;
  vals: string;
  bytes: number;
  capturedMonoMs: number;
  inflight: boolean;
  /** Set for QoS 0 store() readings until their commit: invisible to next(). */
  held?: HeldBatch;
  /** The open store() batch this reading belongs to: never evicted until the batch settles. */
  batch?: HeldBatch;
  waiters?: Array<{ resolve: () => void; reject: (e: Error) => void }>;
}

/** Evicted-before-commit seqs remembered so whenCaptured() can reject them. */
const LOST_MEMORY = 4096;

export class WriteBehindBuffer {
  private readonly rows = new Map<number, Pending>();
  private readonly lost = new Map<number, string>();
  /** Payload bytes in the buffer (not yet on disk). */
  bytes = 0;

  get size(): number {
    return this.rows.size;
  }

  get(seq: number): Pending | undefined {
    return this.rows.get(seq);
  }

  values(): IterableIterator<Pending> {
    return this.rows.values();
  }

  /** The oldest reading waiting (lowest seq). */
  oldest(): Pending | undefined {
    return this.rows.values().next().value;
  }

  add(p: Pending): void {
    this.rows.set(p.seq, p);
    this.bytes += p.bytes;
  }

  /** Take a reading out (committed, acked, evicted or withdrawn). */
  remove(p: Pending): void {
    if (this.rows.delete(p.seq)) this.bytes -= p.bytes;
  }

  /** Take a reading out because it was evicted before its commit; `why` is what whenCaptured() reports. */
  evicted(p: Pending, why: string): void {
    this.remove(p);
    this.lost.set(p.seq, why);
    if (this.lost.size > LOST_MEMORY) this.lost.delete(this.lost.keys().next().value as number);
  }

  /** Why `seq` was evicted before its commit, if it was (and is still remembered). */
  lostReason(seq: number): string | undefined {
    return this.lost.get(seq);
  }
}
