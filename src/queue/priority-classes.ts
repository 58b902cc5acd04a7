/**
 * PriorityClasses: the queue's rows and payload bytes per priority, over disk and RAM, minus rows
 * whose delete waits for the next commit — the books that eviction, refusal and stats() read, so
 * none of them needs a query proportional to the backlog. Loaded from priority_counts at open
 * (priority-counts.ts), then kept by every capture, ack, eviction and withdrawal: O(1) per change.
 *
 * It only counts: it does not know which rows these are (that is the database's and the
 * write-behind buffer's business), nor decide what goes (eviction.ts).
 */
import type { PriorityClass } from "./eviction.ts";

/** The budgets that make the queue full (queue.max_rows, queue.max_bytes, protected_priority). */
export interface ClassLimits {
  maxRows: number;
  maxBytes: number;
  protectedPriority: number;
}

export class PriorityClasses {
  /** Insertion order is kept (the eviction choice and stats() see the classes in that order). */
  private readonly classes = new Map<number, { rows: number; bytes: number }>();
  private totalRows = 0;
  private totalBytes = 0;

  /** Add (or, negative, remove) rows and bytes of one priority; an emptied class is dropped. */
  add(priority: number, rows: number, bytes: number): void {
    this.totalRows += rows;
    this.totalBytes += bytes;
    const c = this.classes.get(priority) ?? { rows: 0, bytes: 0 };
    c.rows += rows;
    c.bytes += bytes;
    if (c.rows <= 0) this.classes.delete(priority);
    else this.classes.set(priority, c);
  }

  totals(): { rows: number; bytes: number } {
    return { rows: this.totalRows, bytes: this.totalBytes };
  }

  /** Priorities that hold rows, highest first (the order next() hands them out in). */
  prioritiesHighFirst(): number[] {
    const priorities = [...this.classes.keys()].filter((p) => (this.classes.get(p)?.rows ?? 0) > 0);
    priorities.sort((a, b) => b - a);
    return priorities;
  }

  /** The classes as eviction.ts takes them. */
  list(): PriorityClass[] {
    return [...this.classes].map(([p, c]) => ({ priority: p, ...c }));
  }

  rowsByPriority(): Record<number, number> {
    return Object.fromEntries([...this.classes].map(([p, c]) => [p, c.rows]));
  }

  /**
   * Full (a budget reached, or the disk below min_free_disk_mb) with nothing left to evict but
   * protected rows: new readings below the protected priority are refused (QueueStats.refusing).
   */
  refusing(limits: ClassLimits, diskLow: boolean): boolean {
    const totals = this.totals();
    const full = totals.rows >= limits.maxRows || totals.bytes >= limits.maxBytes || diskLow;
    return full && this.evictableRows(limits.protectedPriority) === 0 && totals.rows > 0;
  }

  private evictableRows(protectedPriority: number): number {
    let n = 0;
    for (const [p, c] of this.classes) if (p < protectedPriority) n += c.rows;
    return n;
  }
}
