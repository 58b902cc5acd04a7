/**
 * Fakes for queue tests: a hand-driven clock+scheduler (tests never sleep) and a reading factory.
 */
import type { Reading } from "../../src/queue/index.ts";

export const BOOT = "3f0e7a52-0000-4000-8000-000000000001";

/** ManualClock is monoMs and a Scheduler in one: advance(ms) moves time and fires due timers. */
export class ManualClock {
  now = 1_000_000;
  private timers = new Map<number, { due: number; fn: () => void }>();
  private nextId = 1;
  readonly monoMs = () => this.now;
  readonly scheduler = {
    setTimeout: (fn: () => void, ms: number): unknown => {
      const id = this.nextId++;
      this.timers.set(id, { due: this.now + ms, fn });
      return id;
    },
    clearTimeout: (handle: unknown): void => {
      this.timers.delete(handle as number);
    },
  };

  get pendingTimers(): number {
    return this.timers.size;
  }

  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const due = [...this.timers].filter(([, t]) => t.due <= end).sort((a, b) => a[1].due - b[1].due)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.now = Math.max(this.now, due[1].due);
      due[1].fn();
    }
    this.now = end;
  }
}

let n = 0;
export function reading(over: Partial<Reading> = {}, clock?: ManualClock): Reading {
  n++;
  return {
    bootId: BOOT,
    monoNs: BigInt(clock ? clock.now : n) * 1_000_000n,
    wallMs: 1_764_000_000_000 + n,
    tq: "ntp",
    stream: "env",
    priority: 5,
    qos: 1,
    values: { temperature_c: 21.5, humidity_pct: 40 },
    ...over,
  };
}
