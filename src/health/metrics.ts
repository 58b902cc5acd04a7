/**
 * Prometheus metrics for one health server: a private prom-client Registry (never the global
 * default, so two servers in one process — as in tests — do not collide), whose values are taken
 * from the HealthStatus snapshot at scrape time. scrape() reads the status, the vitals and the
 * loop lag once, then every metric's collect() reads that one snapshot, so a scrape is consistent.
 *
 * Counters mirror monotonically increasing totals kept by the runtime: collect() resets and
 * re-adds the current total, which prom-client renders as the counter's value.
 */
import { Counter, Gauge, Registry } from "prom-client";
import { logLinesDropped } from "../log/index.ts";
import type { HealthReport } from "./evaluate.ts";
import type { LoopLagSample } from "./loop-lag.ts";
import type { HealthStatus } from "./snapshot.ts";
import { THROTTLE_FLAG_NAMES } from "./throttle.ts";
import type { Vitals } from "./vitals.ts";

export interface MetricsSnapshot {
  status: HealthStatus;
  vitals: Vitals;
  health: HealthReport;
  lag: LoopLagSample;
  nowMonoMs: number;
  rssBytes: number;
}

export interface Metrics {
  registry: Registry;
  /** Render the exposition text for this snapshot. */
  render(snapshot: MetricsSnapshot): Promise<string>;
}

const PREFIX = "fieldrelay_";

export function createMetrics(version: string): Metrics {
  const registry = new Registry();
  let snap: MetricsSnapshot | undefined;
  const current = () => {
    if (!snap) throw new Error("metrics collected outside render()");
    return snap;
  };

  type Labels = Record<string, string>;
  /** A counter whose value is the runtime's total at scrape time. */
  const total = (
    name: string,
    help: string,
    values: () => Array<[Labels, number]> | number,
    labelNames: string[] = [],
  ) =>
    new Counter({
      name: PREFIX + name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        const v = values();
        if (typeof v === "number") this.inc(v);
        else for (const [labels, n] of v) this.inc(labels, n);
      },
    });
  /**
   * A gauge set at scrape time. Unknown values (undefined) are left out, because unknown is not
   * zero; that needs labels, since prom-client always renders an unlabelled gauge (as 0).
   */
  const gauge = (
    name: string,
    help: string,
    values: () => Array<[Labels, number | undefined]> | number,
    labelNames: string[] = [],
  ) =>
    new Gauge({
      name: PREFIX + name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        const v = values();
        if (typeof v === "number") this.set(v);
        else if (Array.isArray(v)) for (const [labels, n] of v) if (n !== undefined) this.set(labels, n);
      },
    });

  const q = () => current().status.queue;
  const p = () => current().status.publisher;
  const byPriority = (r: Record<number, number>): Array<[Labels, number]> =>
    Object.entries(r).map(([priority, n]) => [{ priority }, n]);
  const sensors = <T>(f: (s: HealthStatus["sensors"][number]) => T) =>
    current().status.sensors.map((s) => [{ sensor: s.name }, f(s)] as [Labels, T]);

  gauge("build_info", "fieldrelay version running (always 1)", () => [[{ version }, 1]], ["version"]);
  gauge(
    "uptime_seconds",
    "Seconds since the runtime started (monotonic)",
    () => (current().nowMonoMs - current().status.startedMonoMs) / 1000,
  );
  gauge(
    "health_status",
    "Overall health: 0 healthy, 1 degraded, 2 unhealthy",
    () => ({ healthy: 0, degraded: 1, unhealthy: 2 })[current().health.status],
  );

  total(
    "readings_captured_total",
    "Readings accepted into the queue (RAM buffer or disk)",
    () => q().captured,
  );
  total("readings_committed_total", "Readings written to flash by a commit", () => q().committed);
  total("commits_total", "Commit transactions run (each one is a flash write)", () => q().commits);
  total("readings_delivered_total", "Readings acknowledged by the broker", () => q().delivered);
  total(
    "readings_delivered_before_commit_total",
    "Readings acknowledged before their commit deadline, so never written to flash",
    () => q().deliveredBeforeCommit,
  );
  total(
    "readings_resent_total",
    "Readings sent again after a reconnect or restart (possible duplicates)",
    () => p().resent,
  );
  total(
    "messages_published_total",
    "MQTT messages carrying readings handed to the client (a batch is one message)",
    () => p().messagesSent,
  );
  total(
    "readings_published_total",
    "Readings in those messages, resends and split batches' halves included",
    () => p().readingsSent,
  );
  total(
    "readings_evicted_total",
    "Readings evicted over a budget, by priority",
    () => byPriority(q().evictedByPriority),
    ["priority"],
  );
  total(
    "readings_refused_total",
    "Readings refused by a full queue, by priority",
    () => byPriority(q().refusedByPriority),
    ["priority"],
  );

  total(
    "queue_state_lost_total",
    "Starts that found queue state lost (queue.db empty or missing, committed transactions gone)",
    () => q().stateLost ?? 0,
  );

  gauge(
    "queue_storage_fault",
    "1 while commits fail because the card or its file system does (EIO, read-only); see /health",
    () => (q().storageFault === undefined ? 0 : 1),
  );
  gauge("queue_rows", "Readings waiting: rows on disk plus readings in RAM", () => q().rows);
  gauge(
    "queue_priority_rows",
    "Readings waiting at each priority (priorities with none are absent)",
    () => byPriority(q().rowsByPriority),
    ["priority"],
  );
  gauge("queue_bytes", "Bytes of readings waiting", () => q().bytes);
  gauge(
    "queue_pending_in_ram",
    "Readings in the write-behind buffer, not yet committed",
    () => q().pendingInRam,
  );
  gauge(
    "queue_oldest_unsent_age_seconds",
    "Monotonic age of the oldest unsent reading of this boot",
    () => q().oldestUnsentAgeS,
  );
  gauge(
    "queue_refusing",
    "1 when only protected rows remain and new low-priority readings are refused",
    () => (q().refusing ? 1 : 0),
  );

  gauge(
    "dead_letters",
    "Readings the broker refused for good, kept in the dead-letter table (fieldrelay queue dead-letter list)",
    () => q().deadLetters,
  );

  total(
    "log_lines_dropped_total",
    "Log lines not written: repeats suppressed by the rate limit, or dropped because the output was full, blocked or failing",
    () => {
      const d = logLinesDropped();
      return [
        [{ reason: "suppressed" }, d.suppressed],
        [{ reason: "output" }, d.dropped],
      ];
    },
    ["reason"],
  );

  gauge("mqtt_connected", "1 while connected to the broker", () => (p().connected ? 1 : 0));
  gauge(
    "mqtt_inflight",
    "Readings sent and not yet acknowledged (a batch in flight counts each of its readings)",
    () => p().inflight,
  );
  total(
    "mqtt_bytes_sent_total",
    "Payload and topic bytes of reading messages written to the broker",
    () => p().bytesSent,
  );
  total(
    "mqtt_batches_split_total",
    "Batches refused for good and split in halves to isolate the refused reading",
    () => p().batchesSplit,
  );
  total(
    "mqtt_refusals_total",
    "Messages the broker refused: transient (kept, retried after a backoff) or permanent (dead letter or split)",
    () => [
      [{ kind: "transient" }, p().refusedTransient],
      [{ kind: "permanent" }, p().refusedPermanent],
    ],
    ["kind"],
  );
  gauge(
    "mqtt_refusing_seconds",
    "Seconds the broker has been refusing messages for now with no ack since (0 when it is not)",
    () => p().refusingForS,
  );
  total(
    "mqtt_reconnects_total",
    "Connection attempts after a lost or failed connection",
    () => p().reconnects,
  );
  gauge("mqtt_backoff_seconds", "Reconnect backoff currently being waited", () => p().backoffS);

  total("sensor_reads_total", "Successful sensor reads", () => sensors((s) => s.reads), ["sensor"]);
  total("sensor_failures_total", "Failed sensor reads", () => sensors((s) => s.failures), ["sensor"]);
  gauge(
    "sensor_last_success_age_seconds",
    "Seconds since the sensor's last successful read (absent before the first)",
    () => sensors((s) => s.lastSuccessAgeS),
    ["sensor"],
  );

  const c = () => current().status.clock;
  gauge(
    "clock_info",
    "Clock model state (always 1): source of the current anchor, time quality, RTC path",
    () => [[{ source: c().source, quality: c().quality, rtc_path: c().rtcPath }, 1]],
    ["source", "quality", "rtc_path"],
  );
  gauge("clock_synced", "1 when the kernel clock is synchronised", () => (c().synced ? 1 : 0));
  gauge(
    "clock_estimated_error_seconds",
    "Error bound of a stamp taken now (te_ms of a reading), by best anchor source; grows with monotonic distance from the anchors at the stated ppm (absent when unbounded)",
    () => [[{ source: c().source }, seconds(c().estimatedErrorMs)]],
    ["source"],
  );
  gauge(
    "rtc_offset_seconds",
    "RTC minus system clock (absent without a readable RTC)",
    () => [[{ rtc_path: c().rtcPath }, seconds(c().rtcOffsetMs)]],
    ["rtc_path"],
  );
  gauge(
    "clock_crystal_rate_ppm",
    "CLOCK_MONOTONIC's rate against the RTC, ppm (the board's crystal; absent until measured)",
    () => [[{ rtc_path: c().rtcPath }, c().crystalPpm]],
    ["rtc_path"],
  );
  gauge("clock_anchors", "Anchors kept for this boot (bounded)", () => c().anchors);
  gauge(
    "clock_last_anchor_age_seconds",
    "Seconds since the last ntp/rtc anchor of this boot (absent before the first)",
    () => [[{ source: c().source }, c().lastGoodAnchorAgeS]],
    ["source"],
  );

  const v = () => current().vitals;
  gauge(
    "soc_temperature_celsius",
    "SoC temperature (absent when the thermal zone is missing)",
    () => [[{ zone: "thermal_zone0" }, known(v().socTemperatureC)]],
    ["zone"],
  );
  gauge(
    "throttle_flag",
    "Firmware throttle flags (get_throttled): 1 when set, now or since boot",
    () => {
      const t = v().throttle;
      if (t === "unknown") return [];
      return THROTTLE_FLAG_NAMES.flatMap(
        (flag): Array<[Labels, number]> => [
          [{ flag: snake(flag), when: "now" }, t.now[flag] ? 1 : 0],
          [{ flag: snake(flag), when: "since_boot" }, t.sinceBoot[flag] ? 1 : 0],
        ],
      );
    },
    ["flag", "when"],
  );
  gauge(
    "under_voltage_alarm",
    "Supply below the PMIC's limit (hwmon in0_lcrit_alarm; absent without rpi_volt)",
    () => {
      const a = v().underVoltageAlarm;
      return [[{ sensor: "rpi_volt" }, a === "unknown" ? undefined : a ? 1 : 0]];
    },
    ["sensor"],
  );
  const disks =
    (f: (d: { availableBytes: number; totalBytes: number }) => number) =>
    (): Array<[Labels, number | undefined]> => {
      const { dataDisk, rootDisk } = v();
      return [
        [{ mount: "data" }, dataDisk === "unknown" ? undefined : f(dataDisk)],
        [{ mount: "root" }, rootDisk === "unknown" ? undefined : f(rootDisk)],
      ];
    };
  gauge(
    "filesystem_available_bytes",
    "Bytes available to fieldrelay",
    disks((d) => d.availableBytes),
    ["mount"],
  );
  gauge(
    "filesystem_size_bytes",
    "Filesystem size",
    disks((d) => d.totalBytes),
    ["mount"],
  );

  gauge(
    "process_resident_memory_bytes",
    "Resident set size of the fieldrelay process",
    () => current().rssBytes,
  );
  gauge(
    "event_loop_lag_max_seconds",
    "Largest event-loop delay since the previous scrape",
    () => current().lag.maxSeconds,
  );
  gauge(
    "event_loop_lag_p99_seconds",
    "99th percentile event-loop delay since the previous scrape",
    () => current().lag.p99Seconds,
  );

  return {
    registry,
    async render(snapshot) {
      snap = snapshot;
      try {
        return await registry.metrics();
      } finally {
        snap = undefined;
      }
    },
  };
}

const seconds = (ms: number | undefined) => (ms === undefined ? undefined : ms / 1000);
const known = (x: number | "unknown") => (x === "unknown" ? undefined : x);
const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
