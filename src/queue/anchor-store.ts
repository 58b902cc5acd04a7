/**
 * The clock's anchors in the queue database (implements the clock's AnchorStore). An anchor is
 * saved at once when the disk allows; when it does not (full disk, I/O error) it is kept in RAM,
 * still returned by anchorsFor(), and written by the next commit that succeeds — so saving an
 * anchor never throws into the clock (a throw there used to stop every stamp).
 *
 *   saveAnchor ─► INSERT ok ──────────────────────────► STORED
 *               └► INSERT fails ─► UNSAVED (RAM) ─ next successful commit ─► STORED
 *                                   └ process ends first ─► lost (the clock re-anchors next start)
 *
 * The table stays bounded (it grew by ~2 rows per clock.anchor_interval_s, ~105 k a year):
 *   - the current boot: the clock compacts its anchors (compactAnchors, ≤ MAX_ANCHORS_PER_BOOT)
 *     and passes what it dropped with the next save; those rows go in the insert's transaction.
 *   - earlier boots: re-stamping needs a boot's anchors while readings of it wait in the queue
 *     (or in dead_letters, which can be re-queued). Once none do, only its newest anchor stays.
 *     Checked in the transaction of an anchor insert, on the first after open and then at most
 *     every OLD_BOOTS_CHECK_MS, and only for boots that still have more than one row, so a
 *     compacted boot costs nothing and the readings table is searched (no index on boot) only for
 *     boots that still need it.
 * No housekeeping ever gets a commit of its own: it rides on an insert that commits anyway.
 */
import type { Database } from "bun:sqlite";
import type { Anchor, AnchorSource, AnchorStore } from "../clock/types.ts";
import type { Logger } from "../log/index.ts";

const INSERT =
  "INSERT INTO anchors(boot_id, mono_ns, wall_ms, source, uncertainty_ms, ppm) VALUES (?, ?, ?, ?, ?, ?)";
const DELETE = "DELETE FROM anchors WHERE boot_id = ? AND mono_ns = ? AND source = ?";

/** Earlier boots are looked at this often at most (monotonic ms). */
export const OLD_BOOTS_CHECK_MS = 6 * 3_600_000;

export class QueueAnchorStore implements AnchorStore {
  private unsaved: Anchor[] = [];
  private drops: Anchor[] = [];
  private oldBootsCheckedMs: number | undefined;

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
    private readonly monoMs: () => number = () => performance.now(),
  ) {}

  saveAnchor(anchor: Anchor, drop: readonly Anchor[] = []): void {
    this.drops.push(...drop);
    if (this.unsaved.length === 0) {
      try {
        this.db.transaction(() => {
          this.insert(anchor);
          this.deleteDrops();
          this.thinOldBoots(anchor.bootId);
        })();
        this.drops = [];
        return;
      } catch (error) {
        this.log.warn({ err: error }, "cannot save a clock anchor now; kept in RAM until a commit succeeds");
      }
    }
    this.unsaved.push(anchor);
  }

  anchorsFor(bootId: string): Anchor[] {
    const rows = this.db
      .query(
        "SELECT boot_id, CAST(mono_ns AS TEXT) AS mono_ns, wall_ms, source, uncertainty_ms, ppm FROM anchors WHERE boot_id = ?",
      )
      .all(bootId) as Array<{
      boot_id: string;
      mono_ns: string;
      wall_ms: number;
      source: AnchorSource;
      uncertainty_ms: number;
      ppm: number | null;
    }>;
    const dropped = new Set(this.drops.map(key));
    return rows
      .map(
        (r): Anchor => ({
          bootId: r.boot_id,
          monoNs: BigInt(r.mono_ns),
          wallMs: r.wall_ms,
          source: r.source,
          uncertaintyMs: r.uncertainty_ms,
          ...(r.ppm === null ? {} : { ppm: r.ppm }),
        }),
      )
      .concat(this.unsaved.filter((a) => a.bootId === bootId))
      .filter((a) => !dropped.has(key(a)));
  }

  /** Anchors waiting to be written; the commit calls writeUnsaved() inside its transaction. */
  get pending(): number {
    return this.unsaved.length;
  }

  /** Inside the commit's transaction: write what is waiting. */
  writeUnsaved(): void {
    for (const a of this.unsaved) this.insert(a);
    if (this.unsaved.length > 0) this.deleteDrops();
  }

  /** After that transaction committed. */
  committed(): void {
    if (this.unsaved.length > 0) this.drops = [];
    this.unsaved = [];
  }

  private insert(a: Anchor): void {
    this.db.query(INSERT).run(a.bootId, a.monoNs, a.wallMs, a.source, a.uncertaintyMs, a.ppm ?? null);
  }

  private deleteDrops(): void {
    const del = this.db.query(DELETE);
    for (const a of this.drops) del.run(a.bootId, a.monoNs, a.source);
  }

  /** Earlier boots without readings keep only their newest anchor (module comment). */
  private thinOldBoots(current: string): void {
    const now = this.monoMs();
    if (this.oldBootsCheckedMs !== undefined && now - this.oldBootsCheckedMs < OLD_BOOTS_CHECK_MS) return;
    this.oldBootsCheckedMs = now;
    const candidates = this.db
      .query("SELECT boot_id FROM anchors WHERE boot_id <> ? GROUP BY boot_id HAVING count(*) > 1")
      .all(current) as Array<{ boot_id: string }>;
    if (candidates.length === 0) return;
    const hasDeadLetters =
      this.db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dead_letters'").get() !==
      null;
    const queued = this.db.query(
      "SELECT 1 FROM readings WHERE boot = (SELECT id FROM boots WHERE boot_id = ?) LIMIT 1",
    );
    const dead = hasDeadLetters
      ? this.db.query("SELECT 1 FROM dead_letters WHERE boot_id = ? LIMIT 1")
      : undefined;
    const thin = this.db.query(
      `DELETE FROM anchors WHERE boot_id = ?1 AND rowid <> (
         SELECT rowid FROM anchors WHERE boot_id = ?1 ORDER BY mono_ns DESC, rowid DESC LIMIT 1)`,
    );
    for (const { boot_id } of candidates) {
      if (queued.get(boot_id) !== null || dead?.get(boot_id)) continue;
      const { changes } = thin.run(boot_id);
      this.log.debug(
        { boot: boot_id, deleted: changes },
        "anchors of an earlier boot thinned (no readings left)",
      );
    }
  }
}

const key = (a: Anchor) => `${a.bootId}/${a.monoNs}/${a.source}`;
