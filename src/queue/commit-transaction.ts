/**
 * The writes of one commit, in ONE transaction (one fsync): the seq reservation mark in meta,
 * the clock anchors that could not be saved before, the inflight marks and deletes as runs
 * (inflight.ts), a boots row for each boot id not stored yet, and the readings of the batch.
 * The row format is in schema.ts.
 *
 * All or nothing: when it throws, the transaction is rolled back and nothing it returns exists;
 * the caller's books in RAM stay as they were, and full-disk.ts decides whether to try again.
 * The caller applies what it returns only once it succeeded.
 */
import type { Database } from "bun:sqlite";
import type { PersistPlan } from "./inflight.ts";
import { SEQ_RESERVED_KEY } from "./schema.ts";
import type { Pending } from "./write-behind.ts";

const INSERT_SQL =
  "INSERT INTO readings(seq, stream, priority, qos, boot, mono_ns, wall_ms, tq, vals, anomaly, bytes, inflight) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

export interface CommitWrites {
  /** The readings to insert, in seq order. */
  batch: readonly Pending[];
  /** boot_id text → boots.id of the boots already stored. */
  boots: ReadonlyMap<string, number>;
  /** The seq reservation to record in meta (undefined: unchanged since the last commit). */
  seqMark: number | undefined;
  /** Write the unsaved anchors (anchor-store.ts), inside the transaction. */
  writeAnchors(): void;
  /** Write the inflight marks and deletes (inflight.ts), inside the transaction. */
  persistRuns(): PersistPlan;
}

export interface WrittenCommit {
  /** Boots stored by this commit (boot_id text → boots.id). */
  newBoots: Map<string, number>;
  /** To apply to the inflight runs in RAM (InflightRuns.apply). */
  plan: PersistPlan;
}

export function writeCommit(db: Database, w: CommitWrites): WrittenCommit {
  const insert = db.query(INSERT_SQL);
  const newBoots = new Map<string, number>();
  const bootOf = (bootId: string): number => {
    const known = w.boots.get(bootId) ?? newBoots.get(bootId);
    if (known !== undefined) return known;
    db.query("INSERT OR IGNORE INTO boots(boot_id) VALUES (?)").run(bootId);
    const row = db.query("SELECT id FROM boots WHERE boot_id = ?").get(bootId) as { id: number };
    newBoots.set(bootId, row.id);
    return row.id;
  };
  const plan = db.transaction((): PersistPlan => {
    if (w.seqMark !== undefined)
      db.query(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      ).run(SEQ_RESERVED_KEY, w.seqMark);
    w.writeAnchors();
    const runs = w.persistRuns();
    for (const p of w.batch) {
      const r = p.reading;
      insert.run(
        p.seq,
        r.stream,
        r.priority,
        r.qos,
        bootOf(r.bootId),
        r.monoNs,
        r.wallMs,
        r.tq,
        p.vals,
        r.anomaly ? 1 : 0,
        p.bytes,
        p.inflight ? 1 : 0,
      );
    }
    return runs;
  })();
  return { newBoots, plan };
}
