/**
 * DiskRoom: whether the file system holding queue.db is below min_free_disk_mb, and, while it is,
 * how much space queue.db already has inside it (free pages) for new rows without growing.
 * Eviction (makeRoom in sqlite-queue.ts) reads both; nothing is evicted here.
 *
 *   OK ─ check(): free < min_free_disk_mb ─► LOW ─ check(): free ≥ min_free_disk_mb ─► OK
 *   LOW ─ measure() after each commit ─► room = freelist_count × page_size (0 when unreadable)
 *
 * A failing statvfs keeps the last answer; min_free_disk_mb = 0 turns the check off.
 */
import type { Database } from "bun:sqlite";
import { dirname } from "node:path";

const MiB = 1024 * 1024;

/** How often capture() may pay for a statvfs, ms (a statvfs per reading costs more than the capture). */
const CHECK_EVERY_MS = 1000;

export class DiskRoom {
  /** The file system is below min_free_disk_mb: queue.db must not grow. */
  low = false;
  /** Bytes of free pages inside queue.db after the last commit (PRAGMA freelist_count). */
  roomBytes = 0;
  private checkedMonoMs: number | undefined;

  constructor(
    private readonly dbPath: string,
    private readonly minFreeDiskMb: number,
    private readonly freeDiskBytes: (dir: string) => number,
    private readonly monoMs: () => number,
  ) {}

  /** Re-read free disk: always with `force` (before each commit), else at most once a second. */
  check(force = true): void {
    if (this.minFreeDiskMb <= 0) return;
    const now = this.monoMs();
    if (!force && this.checkedMonoMs !== undefined && now - this.checkedMonoMs < CHECK_EVERY_MS) return;
    this.checkedMonoMs = now;
    try {
      this.low = this.freeDiskBytes(dirname(this.dbPath)) < this.minFreeDiskMb * MiB;
    } catch {}
  }

  /** While low: measure the space inside queue.db that new rows can take without growing the file. */
  measure(db: Database): void {
    if (!this.low) return;
    try {
      const free = (db.query("PRAGMA freelist_count").get() as { freelist_count: number }).freelist_count;
      const size = (db.query("PRAGMA page_size").get() as { page_size: number }).page_size;
      this.roomBytes = free * size;
    } catch {
      this.roomBytes = 0;
    }
  }
}
