import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { createMetrics, evaluateHealth, startLoopLag, thresholdsFromConfig } from "../../src/health/index.ts";
import { startDriftSampler } from "../../src/health/loop-lag.ts";
import { fakeStatus, NOW_MONO_MS } from "../support/runtime-status.ts";

const unknownVitals = {
  socTemperatureC: "unknown",
  throttle: "unknown",
  underVoltageAlarm: "unknown",
  dataDisk: "unknown",
  rootDisk: "unknown",
} as const;
const thresholds = thresholdsFromConfig({
  queue: { max_rows: 1000, max_bytes: 1_000_000, min_free_disk_mb: 64, commit_interval_ms: 1000 },
});

function render(status = fakeStatus()) {
  const metrics = createMetrics("0.0.0-test");
  return metrics.render({
    status,
    vitals: unknownVitals,
    health: evaluateHealth(status, unknownVitals, NOW_MONO_MS, thresholds),
    lag: { maxSeconds: 0.25, p99Seconds: 0.125 },
    nowMonoMs: NOW_MONO_MS,
    rssBytes: 42_000_000,
  });
}

describe("metrics rendering", () => {
  it("leaves out vitals that are unknown instead of reporting zero", async () => {
    const names = parsePrometheusTextFormat(await render()).map((f) => f);
    const series = (name: string) => names.find((f) => f.name === name)?.metrics ?? [];
    for (const name of [
      "fieldrelay_soc_temperature_celsius",
      "fieldrelay_throttle_flag",
      "fieldrelay_under_voltage_alarm",
      "fieldrelay_filesystem_available_bytes",
    ])
      expect(series(name)).toEqual([]);
    expect(series("fieldrelay_event_loop_lag_max_seconds")).toEqual([{ value: "0.25" }]);
    expect(series("fieldrelay_process_resident_memory_bytes")).toEqual([{ value: "42000000" }]);
    expect(series("fieldrelay_uptime_seconds")).toEqual([{ value: "3600" }]);
  });

  it("leaves out clock figures the runtime does not know", async () => {
    const text = await render(fakeStatus({ clock: { rtcOffsetMs: undefined, estimatedErrorMs: undefined } }));
    const fams = parsePrometheusTextFormat(text);
    expect(fams.find((f) => f.name === "fieldrelay_rtc_offset_seconds")?.metrics ?? []).toEqual([]);
    expect(fams.find((f) => f.name === "fieldrelay_clock_synced")?.metrics).toEqual([{ value: "1" }]);
  });

  it("exports the clock's bound, crystal rate and kept anchors", async () => {
    const text = await render(
      fakeStatus({ clock: { estimatedErrorMs: 5200, crystalPpm: 48.5, anchors: 256 } }),
    );
    const fams = parsePrometheusTextFormat(text);
    const value = (name: string) => fams.find((f) => f.name === name)?.metrics.map((m) => m.value);
    expect(value("fieldrelay_clock_estimated_error_seconds")).toEqual(["5.2"]);
    expect(value("fieldrelay_clock_crystal_rate_ppm")).toEqual(["48.5"]);
    expect(value("fieldrelay_clock_anchors")).toEqual(["256"]);
    const unknown = parsePrometheusTextFormat(await render(fakeStatus({ clock: { crystalPpm: undefined } })));
    expect(unknown.find((f) => f.name === "fieldrelay_clock_crystal_rate_ppm")?.metrics ?? []).toEqual([]);
  });

  it("refuses to collect outside a render (no stale snapshot is ever exposed)", async () => {
    const metrics = createMetrics("x");
    await expect(metrics.registry.metrics()).rejects.toThrow(/outside render/);
  });
});

describe("event-loop lag", () => {
  it("reports a busy block through monitorEventLoopDelay", async () => {
    const lag = startLoopLag();
    try {
      await Bun.sleep(30);
      const until = performance.now() + 60;
      while (performance.now() < until) {}
      await Bun.sleep(30);
      const s = lag.take();
      expect(s.maxSeconds).toBeGreaterThan(0.04);
      expect(s.p99Seconds).toBeLessThanOrEqual(s.maxSeconds + 1e-3);
      expect(lag.take().maxSeconds).toBeLessThan(s.maxSeconds); // reset after each take
    } finally {
      lag.stop();
    }
  });

  it("has a timer-drift fallback that sees the same block", async () => {
    const lag = startDriftSampler(5);
    try {
      await Bun.sleep(20);
      const until = performance.now() + 60;
      while (performance.now() < until) {}
      await Bun.sleep(20);
      expect(lag.take().maxSeconds).toBeGreaterThan(0.04);
      expect(lag.take()).toEqual({ maxSeconds: 0, p99Seconds: 0 });
    } finally {
      lag.stop();
    }
  });
});
