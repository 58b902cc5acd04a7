/**
 * MemoryQueue is an in-memory Queue with the same contract as the SQLite queue, for publisher
 * tests and the drain benchmark:
 *
 * - capture() assigns seq 1, 2, 3 … and the reading counts as captured at once (there is no disk).
 * - next(limit, exclude) returns rows marked inflight first, then priority DESC, seq ASC (each
 *   group in that order), skipping `exclude`.
 * - markInflight() moves rows to the inflight group; ack() deletes them; unknown seqs are ignored.
 * - onAvailable listeners run after every capture.
 * - simulateRestart() keeps rows and inflight marks but forgets listeners, like reopening the file.
 *
 * Rows live in one Map per priority (insertion order = seq order, O(1) delete), so draining a
 * 100 000-row backlog stays linear.
 */
import type {
  CaptureResult,
  Queue,
  QueuedReading,
  QueueStats,
  Reading,
  StoreResult,
} from "../../src/queue/types.ts";

export class MemoryQueue implements Queue {
  private seqNext = 1;
  private readonly byPriority = new Map<number, Map<number, QueuedReading>>();
  private readonly inflightRows = new Map<number, QueuedReading>();
  private listeners = new Set<() => void>();
  private counters = { captured: 0, delivered: 0 };
  /** Every seq ever acked, in ack order (tests assert on it). */
  readonly ackLog: number[] = [];
  /** Readings moved to dead letters, with their reason (#12). */
  readonly deadLetters: Array<{ seq: number; reason: string }> = [];
  /** Every markInflight call's seqs, in order. */
  readonly markLog: number[] = [];

  capture(reading: Reading): CaptureResult {
    const seq = this.seqNext++;
    const row: QueuedReading = { ...reading, seq };
    let group = this.byPriority.get(reading.priority);
    if (!group) {
      group = new Map();
      this.byPriority.set(reading.priority, group);
    }
    group.set(seq, row);
    this.counters.captured++;
    for (const listener of [...this.listeners]) listener();
    return { ok: true, seq };
  }

  async store(readings: Reading[]): Promise<StoreResult> {
    const seqs: number[] = [];
    for (const r of readings) {
      const res = this.capture(r);
      if (res.ok) seqs.push(res.seq);
    }
    return { ok: true, seqs };
  }

  whenCaptured(_seqs: number[]): Promise<void> {
    return Promise.resolve();
  }

  next(limit: number, exclude: ReadonlySet<number>): QueuedReading[] {
    const out: QueuedReading[] = [];
    if (limit <= 0) return out;
    // Usually every inflight row is the caller's own (excluded): filter before sorting.
    const inflight: QueuedReading[] = [];
    for (const r of this.inflightRows.values()) if (!exclude.has(r.seq)) inflight.push(r);
    inflight.sort((a, b) => b.priority - a.priority || a.seq - b.seq);
    for (const row of inflight) {
      if (out.length >= limit) return out;
      out.push(row);
    }
    const priorities = [...this.byPriority.keys()].sort((a, b) => b - a);
    for (const p of priorities) {
      for (const row of this.byPriority.get(p)!.values()) {
        if (out.length >= limit) return out;
        if (!exclude.has(row.seq)) out.push(row);
      }
    }
    return out;
  }

  markInflight(seqs: number[]): void {
    for (const seq of seqs) {
      this.markLog.push(seq);
      for (const group of this.byPriority.values()) {
        const row = group.get(seq);
        if (row) {
          group.delete(seq);
          this.inflightRows.set(seq, row);
          break;
        }
      }
    }
  }

  ack(seqs: number[]): void {
    for (const seq of seqs) {
      let found = this.inflightRows.delete(seq);
      if (!found) for (const group of this.byPriority.values()) found = group.delete(seq) || found;
      if (found) {
        this.counters.delivered++;
        this.ackLog.push(seq);
      }
    }
  }

  deadLetter(seqs: number[], reason: string): void {
    for (const seq of seqs) {
      let found = this.inflightRows.delete(seq);
      if (!found) for (const group of this.byPriority.values()) found = group.delete(seq) || found;
      if (found) this.deadLetters.push({ seq, reason });
    }
  }

  /** Kept like the dead letters: they survive simulateRestart(), as poison_strikes survives a restart. */
  keptStrikes = new Map<number, number>();

  strikes(): Map<number, number> {
    return new Map([...this.keptStrikes].filter(([seq]) => this.seqs().includes(seq)));
  }

  saveStrikes(strikes: ReadonlyMap<number, number>): void {
    this.keptStrikes = new Map(strikes);
  }

  onAvailable(listener: () => void): () => void {
    const wrapped = () => listener();
    this.listeners.add(wrapped);
    return () => this.listeners.delete(wrapped);
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  /** Seqs still held (inflight or not), ascending. */
  seqs(): number[] {
    const all = [...this.inflightRows.keys()];
    for (const group of this.byPriority.values()) all.push(...group.keys());
    return all.sort((a, b) => a - b);
  }

  get size(): number {
    let n = this.inflightRows.size;
    for (const group of this.byPriority.values()) n += group.size;
    return n;
  }

  private rowsByPriority(): Record<number, number> {
    const out: Record<number, number> = {};
    for (const r of [
      ...this.inflightRows.values(),
      ...[...this.byPriority.values()].flatMap((g) => [...g.values()]),
    ])
      out[r.priority] = (out[r.priority] ?? 0) + 1;
    return out;
  }

  /** Like closing and reopening the database: rows and inflight marks stay, listeners go. */
  simulateRestart(): void {
    this.listeners = new Set();
  }

  stats(): QueueStats {
    return {
      captured: this.counters.captured,
      committed: this.counters.captured,
      commits: this.counters.captured,
      delivered: this.counters.delivered,
      deliveredBeforeCommit: 0,
      evictedByPriority: {},
      refusedByPriority: {},
      rows: this.size,
      rowsByPriority: this.rowsByPriority(),
      bytes: 0,
      pendingInRam: 0,
      inflight: this.inflightRows.size,
      oldestUnsentAgeS: 0,
      refusing: false,
      lastCommitMonoMs: undefined,
      lastCommitAttemptMonoMs: undefined,
      lastError: undefined,
      seqNext: this.seqNext,
      stateLost: 0,
      deadLetters: this.deadLetters.length,
    };
  }

  close(): Promise<void> {
    this.listeners.clear();
    return Promise.resolve();
  }
}

/** A reading with test defaults; override what the test is about. */
export function reading(overrides: Partial<Reading> = {}): Reading {
  return {
    bootId: "00000000-0000-0000-0000-000000000000",
    monoNs: 1_000_000_000n,
    wallMs: Date.UTC(2026, 0, 2, 3, 4, 5, 678),
    tq: "ntp",
    stream: "env",
    priority: 5,
    qos: 1,
    values: { temperature_c: 21.5 },
    ...overrides,
  };
}
