/**
 * RepeatLimiter: at most `max` lines of the same message per window (monotonic time); the rest
 * are dropped and counted, and the next line let through carries how many were suppressed. A
 * failing component that warns on every turn then costs a few lines a minute, not a log flood
 * that fills the journal or blocks a slow pipe. Pure apart from the injected clock.
 */
export class RepeatLimiter {
  private readonly windows = new Map<string, { startMs: number; count: number; suppressed: number }>();
  /** Lines dropped by this limiter so far. */
  suppressedTotal = 0;

  constructor(
    private readonly max = 10,
    private readonly windowMs = 60_000,
    private readonly nowMs: () => number = () => performance.now(),
    private readonly maxKeys = 1000,
  ) {}

  /** undefined: drop this line. A number: let it through; it is the count of repeats suppressed before it. */
  admit(key: string): number | undefined {
    const now = this.nowMs();
    const w = this.windows.get(key);
    if (!w || now - w.startMs >= this.windowMs) {
      const suppressed = w?.suppressed ?? 0;
      if (!w && this.windows.size >= this.maxKeys) this.windows.clear();
      this.windows.set(key, { startMs: now, count: 1, suppressed: 0 });
      return suppressed;
    }
    if (w.count < this.max) {
      w.count++;
      const suppressed = w.suppressed;
      w.suppressed = 0;
      return suppressed;
    }
    w.suppressed++;
    this.suppressedTotal++;
    return undefined;
  }
}
