/**
 * PulseAccumulator: the pure bookkeeping of a pulse counter. Edge events arrive in bursts from
 * the kernel; each counts as one pulse. Events the kernel dropped (seqno gaps) are counted as
 * lost, never as pulses — a reading says how many pulses were seen and how many were missed.
 * take() closes an interval: its count, lost and rate, plus the running totals.
 */
import type { LineEvent } from "../../hal/gpio/index.ts";

export interface PulseInterval {
  count: number;
  lost: number;
  total: number;
  total_lost: number;
  rate_hz?: number;
}

export class PulseAccumulator {
  private count = 0;
  private lost = 0;
  private total = 0;
  private totalLost = 0;
  private since: number;

  constructor(startMs: number) {
    this.since = startMs;
  }

  add(events: LineEvent[], lost: number): void {
    this.count += events.length;
    this.total += events.length;
    this.lost += lost;
    this.totalLost += lost;
  }

  take(nowMs: number): PulseInterval {
    const elapsed_s = (nowMs - this.since) / 1000;
    const interval: PulseInterval = {
      count: this.count,
      lost: this.lost,
      total: this.total,
      total_lost: this.totalLost,
      ...(elapsed_s > 0 ? { rate_hz: this.count / elapsed_s } : {}),
    };
    this.count = 0;
    this.lost = 0;
    this.since = nowMs;
    return interval;
  }
}
