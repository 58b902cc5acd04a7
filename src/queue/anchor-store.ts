/**
 * The clock's anchors in the queue database (implements the clock's AnchorStore). An anchor is
 * saved at once when the disk allows; when it does not (full disk, I/O error) it is kept in RAM,
 * still returned by anchorsFor(), and written by the next commit that succeeds — so saving an
 * anchor never throws into the clock (a throw there used to stop every stamp).
 *
 *   saveAnchor ─► INSERT ok ──────────────────────────► STORED
 *               └► INSERT fails ─► UNSAVED (RAM) ─ next successful commit ─► STORED
 *                                   └ process ends first ─► lost (the clock re-anchors next start)
 */
import type { Database } from "bun:sqlite";
import type { Anchor, AnchorSource, AnchorStore } from "../clock/types.ts";
import type { Logger } from "../log/index.ts";

const INSERT =
  "INSERT INTO anchors(boot_id, mono_ns, wall_ms, source, uncertainty_ms) VALUES (?, ?, ?, ?, ?)";

export class QueueAnchorStore implements AnchorStore {
  private unsaved: Anchor[] = [];

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
  ) {}

  saveAnchor(anchor: Anchor): void {
    if (this.unsaved.length === 0) {
      try {
        this.insert(anchor);
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
        "SELECT boot_id, CAST(mono_ns AS TEXT) AS mono_ns, wall_ms, source, uncertainty_ms FROM anchors WHERE boot_id = ?",
      )
      .all(bootId) as Array<{
      boot_id: string;
      mono_ns: string;
      wall_ms: number;
      source: AnchorSource;
      uncertainty_ms: number;
    }>;
    return rows
      .map(
        (r): Anchor => ({
          bootId: r.boot_id,
          monoNs: BigInt(r.mono_ns),
          wallMs: r.wall_ms,
          source: r.source,
          uncertaintyMs: r.uncertainty_ms,
        }),
      )
      .concat(this.unsaved.filter((a) => a.bootId === bootId));
  }

  /** Anchors waiting to be written; the commit calls writeUnsaved() inside its transaction. */
  get pending(): number {
    return this.unsaved.length;
  }

  /** Inside the commit's transaction: write what is waiting. */
  writeUnsaved(): void {
    for (const a of this.unsaved) this.insert(a);
  }

  /** After that transaction committed. */
  committed(): void {
    this.unsaved = [];
  }

  private insert(a: Anchor): void {
    this.db.query(INSERT).run(a.bootId, a.monoNs, a.wallMs, a.source, a.uncertaintyMs);
  }
}
