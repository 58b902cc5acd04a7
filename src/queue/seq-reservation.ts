/**
 * Seq reservation: hands out the per-device seqs, which never repeat. A block of seqs is made
 * durable in the side file (seq-file.ts: rewritten in place, so it needs no new disk block on a
 * full disk) BEFORE any seq of it is handed out — a reading can be published, and acked, before
 * its own commit. The next commit copies the mark into meta.seq_reserved (a second copy, inside
 * the database), riding along in that commit's transaction instead of costing one of its own.
 *
 *   READY(next, reserved)
 *     ├─ reserve(n), next+n-1 ≤ reserved ──────────────────► READY (nothing written)
 *     ├─ reserve(n), side file written ────────────────────► READY(next, next+n-1+block), dirty
 *     └─ reserve(n), side file fails (EIO, none created) ──► FAILING(why): refused until a write works
 *   take() ─► next++        (only after a successful reserve covering it)
 *   dirty ─ commit wrote meta ─► recorded()
 *
 * A crash skips the rest of a block: a gap, never a repeat.
 */
import type { Logger } from "../log/index.ts";
import type { SeqFile } from "./seq-file.ts";

export class SeqReservation {
  private nextSeq: number;
  private reserved: number;
  /** The mark changed since the last commit recorded it in meta. */
  dirty = false;
  /** Why seqs cannot be reserved now; undefined when they can. */
  error: string | undefined;

  constructor(
    floor: number,
    private readonly file: SeqFile | undefined,
    private readonly block: number,
    private readonly dbPath: string,
    private readonly log: Logger,
  ) {
    this.nextSeq = floor + 1;
    this.reserved = floor;
    if (!file) this.error = "the seq side file cannot be created (disk full?)";
  }

  /** The seq the next take() returns. */
  get next(): number {
    return this.nextSeq;
  }

  /** The highest seq reserved (what meta.seq_reserved must hold). */
  get mark(): number {
    return this.reserved;
  }

  /** Make sure the next `count` seqs are reserved durably. Returns why not. */
  reserve(count: number): string | undefined {
    if (this.nextSeq - 1 + count <= this.reserved) return undefined;
    const reserved = this.nextSeq - 1 + count + this.block;
    try {
      if (!this.file) throw new Error(this.error ?? "no seq side file");
      this.file.reserve(reserved);
    } catch (error) {
      const why = `cannot reserve seqs in ${this.dbPath}.seq: ${(error as Error).message}`;
      if (this.error === undefined) this.log.error({ err: error, path: this.dbPath }, why);
      this.error = why;
      return why;
    }
    this.error = undefined;
    this.reserved = reserved;
    this.dirty = true;
    return undefined;
  }

  /** The next seq; the caller reserved it first. */
  take(): number {
    return this.nextSeq++;
  }

  close(): void {
    this.file?.close();
  }
}
