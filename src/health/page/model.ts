/**
 * The status page's data: what GET /page.json returns, built from one status snapshot, the
 * vitals, the /health verdict and the history ring. Pure functions: the page module does the I/O.
 *
 * History columns (see history.ts), one row per step:
 *   rows            readings waiting (queue.rows)
 *   p/<priority>    readings waiting at that priority (0 when none)
 *   captured        queue.captured total       (rates are differences of totals, computed here)
 *   delivered       queue.delivered total
 *   dead            dead-lettered rows, when the queue reports them
 *   s/<sensor>/<field>  the sensor's last numeric value (booleans as 0/1)
 */
import type { FieldValue, QueueStats } from "../../queue/index.ts";
import type { HealthBody } from "../server.ts";
import type { HealthStatus, SensorHealth } from "../snapshot.ts";
import { describeFlags } from "../throttle.ts";
import type { DiskSpace, Vitals } from "../vitals.ts";
import type { HistorySlice } from "./history.ts";

/** The snapshot the page reads: HealthStatus plus what only the page shows. */
export interface PageStatus extends HealthStatus {
  /** deadLetters appears when the queue keeps a dead-letter table (#12). */
  queue: QueueStats & { deadLetters?: number; lastDeadLetterReason?: string | undefined };
  sensors: ReadonlyArray<SensorHealth & { driver?: string; values?: Record<string, FieldValue> }>;
}

/** Queue keys whose absence from a row means zero (a priority that has no rows). */
export const zeroWhenMissing = (key: string) => key.startsWith("p/");

/** historyRow is the row the history records for one snapshot. */
export function historyRow(s: PageStatus): Record<string, number> {
  const row: Record<string, number> = {
    rows: s.queue.rows,
    captured: s.queue.captured,
    delivered: s.queue.delivered,
  };
  for (const [p, n] of Object.entries(s.queue.rowsByPriority)) row[`p/${p}`] = n;
  if (s.queue.deadLetters !== undefined) row.dead = s.queue.deadLetters;
  for (const sensor of s.sensors) {
    for (const [field, v] of Object.entries(sensor.values ?? {})) {
      const n = typeof v === "number" ? v : typeof v === "boolean" ? Number(v) : undefined;
      if (n !== undefined) row[`s/${sensor.name}/${field}`] = n;
    }
  }
  return row;
}

export interface PageInput {
  status: PageStatus;
  vitals: Vitals;
  health: HealthBody;
  deviceId: string | undefined;
  nowMonoMs: number;
  rssBytes: number;
  stepS: number;
  /** The rows the client asked for: all, or from its last one on (that one is dropped). */
  history: HistorySlice;
  /** The client's last row (CLOCK_MONOTONIC ms), when it asked for newer rows only. */
  sinceMonoMs?: number;
  /** The history's newest row at or before nowMonoMs − RATE_WINDOW_S, for the live rates. */
  rateBase: { t: number; captured: number; delivered: number } | undefined;
}

/** Live rates are averaged over about this long (or since the oldest row, when younger). */
export const RATE_WINDOW_S = 60;

export interface PageHistory {
  step_s: number;
  /** CLOCK_MONOTONIC seconds of each row. */
  t: number[];
  rows: Array<number | null>;
  by_priority: Record<string, Array<number | null>>;
  /** Per second over the step before each row (null for a row with no predecessor in this slice). */
  captured_per_s: Array<number | null>;
  delivered_per_s: Array<number | null>;
  dead_lettered?: Array<number | null>;
  sensors: Record<string, Record<string, Array<number | null>>>;
}

const nullable = <T>(x: T | "unknown"): T | null => (x === "unknown" ? null : x);
const disk = (d: DiskSpace | "unknown") =>
  d === "unknown" ? null : { path: d.path, available_bytes: d.availableBytes, total_bytes: d.totalBytes };
const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Per-second differences of a total column; a counter that went backwards (restart) gives null. */
export function ratePerS(t: number[], totals: Array<number | null>): Array<number | null> {
  return totals.map((v, i) => {
    const prev = totals[i - 1];
    if (i === 0 || v === null || prev === null || prev === undefined) return null;
    const dt = (t[i]! - t[i - 1]!) / 1000;
    return dt > 0 && v >= prev ? round((v - prev) / dt) : null;
  });
}

/**
 * pageHistory shapes a slice for the page. The slice may start with the last row the client
 * already has (so the first new row gets a rate); rows at or before keepAfterMs are dropped after
 * the rates are computed.
 */
export function pageHistory(
  slice: HistorySlice,
  stepS: number,
  keepAfterMs = Number.NEGATIVE_INFINITY,
): PageHistory {
  const rates = {
    captured: ratePerS(slice.t, slice.series.captured ?? slice.t.map(() => null)),
    delivered: ratePerS(slice.t, slice.series.delivered ?? slice.t.map(() => null)),
  };
  const from = slice.t.findIndex((t) => t > keepAfterMs);
  const start = from === -1 ? slice.t.length : from;
  const h: HistorySlice = {
    t: slice.t.slice(start),
    series: Object.fromEntries(Object.entries(slice.series).map(([k, v]) => [k, v.slice(start)])),
  };
  const by_priority: PageHistory["by_priority"] = {};
  const sensors: PageHistory["sensors"] = {};
  for (const [key, values] of Object.entries(h.series)) {
    if (key.startsWith("p/")) by_priority[key.slice(2)] = values;
    else if (key.startsWith("s/")) {
      const slash = key.indexOf("/", 2);
      const sensor = key.slice(2, slash);
      const fields = sensors[sensor] ?? {};
      fields[key.slice(slash + 1)] = values;
      sensors[sensor] = fields;
    }
  }
  const none = h.t.map(() => null);
  return {
    step_s: stepS,
    t: h.t.map((ms) => round(ms / 1000)),
    rows: h.series.rows ?? none,
    by_priority,
    captured_per_s: rates.captured.slice(start),
    delivered_per_s: rates.delivered.slice(start),
    ...(h.series.dead ? { dead_lettered: h.series.dead } : {}),
    sensors,
  };
}

/** pageData is the body of GET /page.json. */
export function pageData(input: PageInput) {
  const { status: s, vitals: v, health } = input;
  const q = s.queue;
  const p = s.publisher;
  const c = s.clock;
  const base = input.rateBase;
  const dtS = base ? (input.nowMonoMs - base.t) / 1000 : 0;
  const rate = (now: number, then: number | undefined) =>
    then !== undefined && dtS > 0 && now >= then ? round((now - then) / dtS) : null;
  return {
    v: 1,
    device: input.deviceId ?? null,
    version: health.version,
    uptime_s: health.uptime_s,
    now_mono_s: round(input.nowMonoMs / 1000),
    health: { status: health.status, checks: health.checks },
    queue: {
      rows: q.rows,
      bytes: q.bytes,
      by_priority: Object.fromEntries(Object.entries(q.rowsByPriority).map(([k, n]) => [k, n])),
      pending_in_ram: q.pendingInRam,
      inflight: q.inflight,
      oldest_unsent_age_s: round(q.oldestUnsentAgeS, 1),
      refusing: q.refusing,
      captured_total: q.captured,
      delivered_total: q.delivered,
      evicted_total: Object.values(q.evictedByPriority).reduce((a, b) => a + b, 0),
      refused_total: Object.values(q.refusedByPriority).reduce((a, b) => a + b, 0),
      dead_lettered: q.deadLetters ?? null,
      last_dead_letter_reason: q.lastDeadLetterReason ?? null,
      last_error: q.lastError ?? null,
    },
    rates: {
      window_s: round(dtS, 1),
      captured_per_s: rate(q.captured, base?.captured),
      delivered_per_s: rate(q.delivered, base?.delivered),
    },
    broker: {
      connected: p.connected,
      inflight: p.inflight,
      reconnects: p.reconnects,
      backoff_s: round(p.backoffS, 1),
      published: p.published,
      delivered: p.delivered,
      resent: p.resent,
      last_error: p.lastError ?? null,
    },
    sensors: s.sensors.map((x) => ({
      name: x.name,
      driver: x.driver ?? null,
      reads: x.reads,
      failures: x.failures,
      last_success_age_s: x.lastSuccessAgeS === undefined ? null : round(x.lastSuccessAgeS, 1),
      last_error: x.lastError ?? null,
      values: x.values ?? {},
    })),
    clock: {
      source: c.source,
      quality: c.quality,
      synced: c.synced,
      error_bound_ms: c.estimatedErrorMs ?? null,
      anchors: c.anchors,
      crystal_ppm: c.crystalPpm ?? null,
      last_anchor_age_s: c.lastGoodAnchorAgeS === undefined ? null : round(c.lastGoodAnchorAgeS, 1),
      rtc_path: c.rtcPath,
      rtc_offset_ms: c.rtcOffsetMs ?? null,
      boot_id: c.bootId,
    },
    vitals: {
      soc_temperature_c: nullable(v.socTemperatureC),
      throttle:
        v.throttle === "unknown"
          ? null
          : {
              raw: `0x${v.throttle.raw.toString(16)}`,
              now: describeFlags(v.throttle.now),
              since_boot: describeFlags(v.throttle.sinceBoot),
            },
      under_voltage: nullable(v.underVoltageAlarm),
      data_disk: disk(v.dataDisk),
      root_disk: disk(v.rootDisk),
    },
    process: { rss_bytes: input.rssBytes },
    history: pageHistory(input.history, input.stepS, input.sinceMonoMs),
  };
}

export type PageData = ReturnType<typeof pageData>;
