/**
 * LoopLag measures how late the event loop runs, for the metrics. Bun 1.4 implements
 * perf_hooks.monitorEventLoopDelay (checked: a 150 ms busy block shows as ~149 ms max), so that
 * is used; where it throws, a timer-drift sampler (how late a 100 ms interval fires) stands in.
 * Each scrape reads the maximum and p99 since the previous scrape, then resets.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";

export interface LoopLagSample {
  maxSeconds: number;
  p99Seconds: number;
}

export interface LoopLag {
  take(): LoopLagSample;
  stop(): void;
}

export function startLoopLag(): LoopLag {
  try {
    const h = monitorEventLoopDelay({ resolution: 20 });
    h.enable();
    return {
      take() {
        const sample =
          h.count > 0
            ? { maxSeconds: h.max / 1e9, p99Seconds: h.percentile(99) / 1e9 }
            : { maxSeconds: 0, p99Seconds: 0 };
        h.reset();
        return sample;
      },
      stop: () => h.disable(),
    };
  } catch {
    return startDriftSampler(100);
  }
}

/** Timer drift: how much later than scheduled each tick of an interval fires. */
export function startDriftSampler(periodMs: number): LoopLag {
  let lags: number[] = [];
  let expected = performance.now() + periodMs;
  const timer = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - expected));
    if (lags.length > 10_000) lags = lags.slice(-5_000);
    expected = now + periodMs;
  }, periodMs);
  timer.unref?.();
  return {
    take() {
      const sorted = [...lags].sort((a, b) => a - b);
      lags = [];
      if (sorted.length === 0) return { maxSeconds: 0, p99Seconds: 0 };
      const p99 = sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!;
      return { maxSeconds: sorted.at(-1)! / 1000, p99Seconds: p99 / 1000 };
    },
    stop: () => clearInterval(timer),
  };
}
