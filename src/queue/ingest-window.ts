/**
 * When the ingest (store()) batches waiting for their first commit are committed, as a pure
 * function of the oldest waiting batch. A reading is captured once committed OR acked by the
 * broker, whichever comes first; every commit costs the SD card an fsync and a few KB, so the
 * window lets the broker's ack come first and lets the batches that must be written share one
 * commit, while bounding how long a client waits for its 201.
 *
 *   oldest batch waiting ─ broker silent (none of it inflight, no ack within the commit interval)
 *                        │   ─► wait ingest_commit_ms
 *                        ├ the broker has it (every unacked reading inflight), or acked readings
 *                        │   within the last commit_interval_ms (it is up, the publisher is
 *                        │   only behind: max_inflight) ─► wait for the acks up to
 *                        │   commit_interval_ms (its 201 is as late as the broker anyway;
 *                        │   writing would cost flash for nothing)
 *                        ├ ≥ GATHER_EARLY batches wait and the broker took none of the oldest
 *                        │   ─► commit now (offline: they already share one fsync)
 *                        └ window over ─► commit (batches the broker acks meanwhile are gone)
 *
 * The queue looks again when the short window ends even while waiting for the broker (it may
 * have dropped the readings, e.g. a lost connection), and when the long one does.
 */

/** Waiting ingest batches that close the window early while the broker takes none. */
export const GATHER_EARLY = 32;

export interface GatherState {
  /** How long the oldest waiting batch has waited (ms). */
  waitedMs: number;
  /**
   * Every reading of the oldest batch not acked yet is with the broker (inflight), or the broker
   * acked readings within the last commit_interval_ms.
   */
  withBroker: boolean;
  /** The broker took none of the oldest batch (its first reading is not inflight). */
  untaken: boolean;
  /** Batches waiting for their first commit. */
  waiting: number;
}

export type GatherDecision = { kind: "commit" } | { kind: "wait"; ms: number };

export function gatherDecision(
  s: GatherState,
  cfg: { commitIntervalMs: number; ingestCommitMs: number },
): GatherDecision {
  const short = Math.min(cfg.commitIntervalMs, cfg.ingestCommitMs);
  const window = s.withBroker ? cfg.commitIntervalMs : short;
  if (s.waitedMs >= window || (s.waiting >= GATHER_EARLY && s.untaken)) return { kind: "commit" };
  return { kind: "wait", ms: s.waitedMs < short ? short - s.waitedMs : window - s.waitedMs };
}

/** The 503 detail for a batch refused after part of it went to the broker (else `detail` as is). */
export function refusalDetail(
  detail: string,
  seqs: readonly number[],
  delivered: number,
  mayArrive: number,
): string {
  if (delivered + mayArrive === 0) return detail;
  return `${detail}; but the broker was sent part of it: ${delivered} delivered, ${mayArrive} may still arrive (seqs ${seqs[0]}–${seqs.at(-1)})`;
}
