/**
 * IngestBatches: the store() batches that are open — admitted, not yet settled — their gathering
 * window (when ingest-window.ts says to commit) and what becomes of them when a commit fails.
 *
 *   store() ─► OPEN ─ every reading committed or acked ─► CAPTURED (201)
 *                  ├ commit fails, none handed out ──────► WITHDRAWN (503; nothing published)
 *                  └ commit fails, some handed out ─► waits ─► CAPTURED, or at the deadline
 *                                                     REFUSED (503 naming the seqs the broker has)
 *
 * A batch is settled exactly once. Its readings live in the write-behind buffer (write-behind.ts);
 * this module reads them there and withdraws them from it, and leaves the queue's books
 * (per-priority counts, refusals, evictions to put back, the commit itself) to the host.
 */
import type { Scheduler } from "../clock/scheduler.ts";
import { gatherDecision, refusalDetail } from "./ingest-window.ts";
import type { StoreResult } from "./types.ts";
import type { HeldBatch, Pending, Tentative, WriteBehindBuffer } from "./write-behind.ts";

/**
 * How long a store() batch whose commit failed waits for the broker's acks of readings it already
 * has (or a later commit) before it is refused: the bound on an ingest answer beyond
 * ingest_commit_ms when the disk fails under a live broker.
 */
export const STORE_DEADLINE_MS = 5000;

/** What the batches need from the queue that holds them. */
export interface IngestBatchesHost {
  readonly pending: WriteBehindBuffer;
  readonly scheduler: Scheduler;
  readonly cfg: { commitIntervalMs: number; ingestCommitMs: number };
  monoMs(): number;
  /** Readings the broker has acked so far (QueueStats.delivered). */
  delivered(): number;
  /** Commit now; the commit takes every waiting batch (it calls taken()). */
  commit(): void;
  /** Why the last commit failed (undefined once one succeeds). */
  lastError(): string | undefined;
  /** A batch was captured: count its readings, keep (log) the evictions made for it. */
  captured(batch: HeldBatch): void;
  /** A reading of a refused batch left the buffer unpublished: take it off the books. */
  withdrawn(p: Pending): void;
  /** Put back disk rows evicted for a batch that was refused (evicted for nothing). */
  undoEviction(rows: Tentative[]): void;
}

export class IngestBatches {
  /** Open batches waiting for their first commit, oldest first (see gather()). */
  private gathering: HeldBatch[] = [];
  private groupTimer: unknown;
  /** The delivered count when gather() last saw it change, and when (brokerAckedRecently()). */
  private ackSeen: { delivered: number; atMonoMs: number | undefined } = {
    delivered: 0,
    atMonoMs: undefined,
  };

  constructor(private readonly host: IngestBatchesHost) {}

  /**
   * A new batch of `readings` readings that settles through `settle`; `evictions` were made for
   * it. Its `waiter` goes on each of its readings in the buffer.
   */
  create(
    settle: (result: StoreResult) => void,
    evictions: Tentative[],
    readings: number,
  ): HeldBatch & Required<Pick<HeldBatch, "waiter">> {
    const batch: HeldBatch = { seqs: [], settle, evictions, outstanding: readings, settled: false };
    const waiter = {
      resolve: () => {
        if (--batch.outstanding === 0) this.settle(batch, { ok: true, seqs: batch.seqs });
      },
      reject: () => {}, // a batch's readings are never evicted; close() withdraws the batch
    };
    return Object.assign(batch, { waiter });
  }

  /** The batch's readings are in the buffer: its gathering window starts at `nowMonoMs`. */
  admit(batch: HeldBatch, nowMonoMs: number): void {
    this.gathering.push(batch);
    batch.admittedMonoMs = nowMonoMs;
  }

  /** The ingest gathering window (ingest-window.ts): commit the waiting batches now, or look again later. */
  gather(): void {
    while (this.gathering.length > 0 && (this.gathering[0] as HeldBatch).settled) this.gathering.shift();
    const oldest = this.gathering[0];
    if (oldest === undefined) {
      if (this.groupTimer !== undefined) this.host.scheduler.clearTimeout(this.groupTimer);
      this.groupTimer = undefined;
      return;
    }
    const first = this.host.pending.get(oldest.seqs[0] as number);
    const decision = gatherDecision(
      {
        waitedMs: this.host.monoMs() - (oldest.admittedMonoMs ?? 0),
        withBroker: this.withBroker(oldest) || this.brokerAckedRecently(),
        untaken: first !== undefined && !first.inflight,
        waiting: this.gathering.length,
      },
      this.host.cfg,
    );
    if (decision.kind === "commit") {
      this.host.commit();
      return;
    }
    if (this.groupTimer !== undefined) return;
    this.groupTimer = this.host.scheduler.setTimeout(() => {
      this.groupTimer = undefined;
      this.gather();
    }, decision.ms);
  }

  /** A commit is under way: it takes every batch waiting (or, failing, withdrawOpen() decides). */
  taken(): void {
    if (this.groupTimer !== undefined) {
      this.host.scheduler.clearTimeout(this.groupTimer);
      this.groupTimer = undefined;
    }
    this.gathering = [];
  }

  /**
   * A commit failed (or the queue closes): refuse every open batch none of whose readings went to
   * the broker, withdrawing them (never published). A batch some of which the broker has or may
   * have (acked, or inflight) waits for the acks or a later commit — the contract's "acked,
   * whichever comes first" — up to STORE_DEADLINE_MS, then gives up. On close, all give up.
   */
  withdrawOpen(detail: string, closing = false): void {
    const batches = new Map<HeldBatch, Pending[]>();
    for (const p of this.host.pending.values()) {
      if (!p.batch || p.batch.settled) continue;
      const list = batches.get(p.batch) ?? [];
      list.push(p);
      batches.set(p.batch, list);
    }
    for (const [b, rows] of batches) {
      const handed = b.outstanding < b.seqs.length || rows.some((p) => p.inflight);
      if (handed && !closing) {
        b.deadline ??= this.host.scheduler.setTimeout(() => {
          b.deadline = undefined;
          this.giveUp(b, `readings could not be stored: ${this.host.lastError() ?? "commit failed"}`);
        }, STORE_DEADLINE_MS);
        continue;
      }
      this.giveUp(b, detail);
    }
  }

  /** The broker acked readings within the last commit interval (seen through the delivered count). */
  private brokerAckedRecently(): boolean {
    const now = this.host.monoMs();
    const delivered = this.host.delivered();
    if (delivered !== this.ackSeen.delivered) this.ackSeen = { delivered, atMonoMs: now };
    return (
      this.ackSeen.atMonoMs !== undefined && now - this.ackSeen.atMonoMs < this.host.cfg.commitIntervalMs
    );
  }

  /** Every reading of the batch that is not acked yet is with the broker (inflight). */
  private withBroker(batch: HeldBatch): boolean {
    for (const seq of batch.seqs) {
      const p = this.host.pending.get(seq);
      if (p !== undefined && !p.inflight) return false;
    }
    return true;
  }

  /**
   * Refuse an open batch: withdraw its readings the broker never got; those it did (inflight)
   * stay in RAM as ordinary readings (they may still be delivered — the refusal says so).
   */
  private giveUp(b: HeldBatch, detail: string): void {
    if (b.settled) return;
    const kept: number[] = [];
    for (const seq of b.seqs) {
      const p = this.host.pending.get(seq);
      if (!p || p.batch !== b) continue;
      p.batch = undefined;
      p.held = undefined;
      p.waiters = p.waiters?.filter((w) => w !== b.waiter);
      if (p.inflight) {
        kept.push(seq);
        continue;
      }
      this.host.pending.remove(p);
      this.host.withdrawn(p);
    }
    const delivered = b.seqs.length - b.outstanding; // acked before the refusal
    if (b.evictions.length > 0) this.host.undoEviction(b.evictions); // evicted for nothing: put back
    this.settle(b, { ok: false, detail: refusalDetail(detail, b.seqs, delivered, kept.length) });
  }

  /** Settle a batch once: ok (every reading committed or acked) or refused. */
  private settle(batch: HeldBatch, result: StoreResult): void {
    if (batch.settled) return;
    batch.settled = true;
    if (batch.deadline !== undefined) this.host.scheduler.clearTimeout(batch.deadline);
    if (result.ok) this.host.captured(batch);
    batch.settle(result);
  }
}
