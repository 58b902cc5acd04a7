/**
 * ManualScheduler is the Scheduler test double: nothing runs until the test advances its clock.
 */
import type { Scheduler } from "../clock/scheduler.ts";

interface ManualTimer {
  id: number;
  dueMs: number;
  delayMs: number;
  fn: () => void;
}

/** ManualScheduler keeps timers in a list; advance() moves its clock and runs what became due. */
export class ManualScheduler implements Scheduler {
  nowMs = 0;
  private nextId = 1;
  private timers: ManualTimer[] = [];
  /** Every delay ever requested, in order (what the backoff tests assert on). */
  readonly requestedMs: number[] = [];

  readonly monoMs = (): number => this.nowMs;

  setTimeout(fn: () => void, ms: number): unknown {
    const timer = { id: this.nextId++, dueMs: this.nowMs + ms, delayMs: ms, fn };
    this.timers.push(timer);
    this.requestedMs.push(ms);
    return timer.id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  get pending(): number {
    return this.timers.length;
  }

  /** Delays of the timers still waiting, in creation order. */
  pendingDelaysMs(): number[] {
    return this.timers.map((t) => t.delayMs);
  }

  /** Move the clock forward by ms, running due timers in due order. */
  advance(ms: number): void {
    const target = this.nowMs + ms;
    for (;;) {
      const due = this.timers
        .filter((t) => t.dueMs <= target)
        .sort((a, b) => a.dueMs - b.dueMs || a.id - b.id);
      const first = due[0];
      if (!first) break;
      this.timers = this.timers.filter((t) => t !== first);
      this.nowMs = Math.max(this.nowMs, first.dueMs);
      first.fn();
    }
    this.nowMs = target;
  }

  /** Run the earliest pending timer, whatever its delay. Returns false when none is pending. */
  runNext(): boolean {
    const first = [...this.timers].sort((a, b) => a.dueMs - b.dueMs || a.id - b.id)[0];
    if (!first) return false;
    this.advance(first.dueMs - this.nowMs);
    return true;
  }
}
