/**
 * evaluateHealth turns a HealthStatus and the Pi vitals into one verdict, with a named check
 * and a reason for each part. The rule that shapes it: "unhealthy" (HTTP 503, and what makes an
 * orchestrator restart the service) means fieldrelay can no longer CAPTURE — the database does
 * not take writes, the sampler loop has stalled, or the queue refuses readings. Everything that
 * only delays delivery or lowers quality (broker down, queue filling, a sensor failing, clock
 * unsynced, under-voltage, disk low) is "degraded" (HTTP 200): restarting would not fix it, and
 * a restart loop while the broker is away would lose the RAM buffer for nothing.
 */
import type { HealthStatus } from "./snapshot.ts";
import { describeFlags } from "./throttle.ts";
import type { Vitals } from "./vitals.ts";

export type HealthState = "healthy" | "degraded" | "unhealthy";
export type CheckState = "ok" | "degraded" | "unhealthy" | "unknown";

export interface Check {
  status: CheckState;
  reason: string;
}

export interface HealthReport {
  status: HealthState;
  checks: Record<string, Check>;
}

export interface HealthThresholds {
  /** queue.max_rows and queue.max_bytes: the budgets the queue evicts at. */
  queueMaxRows: number;
  queueMaxBytes: number;
  /** Fraction of a budget above which the queue is reported as filling (0.8). */
  queueBudgetFraction: number;
  /** The sampler loop must turn at least this often (ms) or capture has stalled. */
  samplerStallMs: number;
  /** With a commit error, the last good commit may be at most this old (ms) before the db counts as not writable. */
  dbStaleMs: number;
  /** A failing sensor whose last success is older than this (s) is reported. */
  sensorStaleS: number;
  /** The data partition is low below this many available bytes. */
  dataDiskLowBytes: number;
}

export interface ThresholdConfig {
  queue: { max_rows: number; max_bytes: number; min_free_disk_mb: number; commit_interval_ms: number };
}

/** Thresholds from the config: budgets from [queue]; the disk is "low" at twice the eviction floor. */
export function thresholdsFromConfig(config: ThresholdConfig): HealthThresholds {
  return {
    queueMaxRows: config.queue.max_rows,
    queueMaxBytes: config.queue.max_bytes,
    queueBudgetFraction: 0.8,
    samplerStallMs: 30_000,
    dbStaleMs: Math.max(10_000, 3 * config.queue.commit_interval_ms),
    sensorStaleS: 60,
    dataDiskLowBytes: Math.max(2 * config.queue.min_free_disk_mb, 32) * 1024 * 1024,
  };
}

const ok = (reason: string): Check => ({ status: "ok", reason });
const degraded = (reason: string): Check => ({ status: "degraded", reason });
const unhealthy = (reason: string): Check => ({ status: "unhealthy", reason });
const unknown = (reason: string): Check => ({ status: "unknown", reason });

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

export function evaluateHealth(
  status: HealthStatus,
  vitals: Vitals,
  nowMonoMs: number,
  t: HealthThresholds,
): HealthReport {
  const checks: Record<string, Check> = {
    database: database(status, nowMonoMs, t),
    sampler: sampler(status, nowMonoMs, t),
    queue: queue(status, t),
    broker: broker(status),
    dead_letters: deadLetters(status),
    sensors: sensors(status, t),
    clock: clock(status),
    power: power(vitals),
    disk: disk(vitals, t),
  };
  const states = Object.values(checks).map((c) => c.status);
  const verdict: HealthState = states.includes("unhealthy")
    ? "unhealthy"
    : states.includes("degraded")
      ? "degraded"
      : "healthy";
  return { status: verdict, checks };
}

function database(s: HealthStatus, now: number, t: HealthThresholds): Check {
  const { lastError, lastCommitMonoMs, storageFault } = s.queue;
  // A failing card is unhealthy at once: the operator needs the device and mount, not a timeout.
  if (storageFault !== undefined) return unhealthy(storageFault);
  if (lastError === undefined) return ok("commits succeed");
  const since = lastCommitMonoMs ?? s.startedMonoMs;
  const age = now - since;
  if (age > t.dbStaleMs) {
    const when = lastCommitMonoMs === undefined ? "no commit yet" : `last good commit ${seconds(age)} ago`;
    return unhealthy(`database not writable: ${lastError} (${when})`);
  }
  return degraded(`last commit failed: ${lastError} (last good commit ${seconds(age)} ago)`);
}

function sampler(s: HealthStatus, now: number, t: HealthThresholds): Check {
  const age = now - s.samplerProgressMonoMs;
  if (age > t.samplerStallMs)
    return unhealthy(
      `sampler loop stalled: last turn ${seconds(age)} ago (limit ${seconds(t.samplerStallMs)})`,
    );
  return ok(`last turn ${seconds(Math.max(0, age))} ago`);
}

function queue(s: HealthStatus, t: HealthThresholds): Check {
  const q = s.queue;
  if (q.refusing)
    return unhealthy("queue refuses new readings: only protected-priority rows remain within budget");
  const rowsFraction = q.rows / t.queueMaxRows;
  const bytesFraction = q.bytes / t.queueMaxBytes;
  const usage = `${q.rows} rows (${pct(rowsFraction)} of max_rows), ${q.bytes} bytes (${pct(bytesFraction)} of max_bytes)`;
  if (rowsFraction > t.queueBudgetFraction || bytesFraction > t.queueBudgetFraction)
    return degraded(`queue above ${pct(t.queueBudgetFraction)} of its budget: ${usage}`);
  return ok(usage);
}

const pct = (f: number) => `${Math.round(f * 100)} %`;

/**
 * #12 hardening: a broker that refuses messages for now (PUBACK 0x97 quota exceeded) this long
 * with no ack since is more than a blip: readings pile up although the connection is fine.
 */
export const REFUSING_DEGRADED_S = 300;

function broker(s: HealthStatus): Check {
  const p = s.publisher;
  if (p.connected && p.refusingForS >= REFUSING_DEGRADED_S)
    return degraded(
      `broker refuses messages for now (${p.lastRefusal ?? "transient refusal"}) since ${(p.refusingForS / 60).toFixed(0)} min, ${p.refusedTransient} refusal(s) in all; readings stay queued and are retried (${s.queue.rows} wait)`,
    );
  if (p.connected) return ok(`connected, ${p.inflight} inflight`);
  const why = p.lastError ? `: ${p.lastError}` : "";
  return degraded(
    `broker unreachable${why}; retrying in ${p.backoffS.toFixed(1)} s; ${s.queue.rows} readings wait, oldest ${s.queue.oldestUnsentAgeS.toFixed(0)} s`,
  );
}

/** #12: readings the broker refused for good are kept aside; delivery goes on, but someone must look. */
function deadLetters(s: HealthStatus): Check {
  const n = s.queue.deadLetters;
  if (n === 0) return ok("none");
  const why = s.queue.lastDeadLetterReason ? ` (last: ${s.queue.lastDeadLetterReason})` : "";
  return degraded(
    `${n} reading(s) refused by the broker are kept as dead letters${why}; see \`fieldrelay queue dead-letter list\`, requeue after fixing the cause`,
  );
}

function sensors(s: HealthStatus, t: HealthThresholds): Check {
  if (s.sensors.length === 0) return ok("no sensors configured");
  const failing = s.sensors.filter(
    (x) =>
      x.lastError !== undefined && (x.lastSuccessAgeS === undefined || x.lastSuccessAgeS > t.sensorStaleS),
  );
  if (failing.length === 0) return ok(`${s.sensors.length} sensor(s) reading`);
  return degraded(
    failing
      .map(
        (x) =>
          `${x.name} failing: ${x.lastError} (${x.lastSuccessAgeS === undefined ? "never read" : `last success ${x.lastSuccessAgeS.toFixed(0)} s ago`})`,
      )
      .join("; "),
  );
}

function clock(s: HealthStatus): Check {
  const c = s.clock;
  if (!c.synced) return degraded(`clock not synchronised (quality ${c.quality}, source ${c.source})`);
  const err = c.estimatedErrorMs === undefined ? "" : `, estimated error ${c.estimatedErrorMs} ms`;
  return ok(`synchronised via ${c.source}${err}`);
}

function power(v: Vitals): Check {
  if (v.throttle === "unknown" && v.underVoltageAlarm === "unknown")
    return unknown("no firmware throttle state or rpi_volt sensor (not a Raspberry Pi?)");
  const now = v.throttle === "unknown" ? [] : describeFlags(v.throttle.now);
  if (v.underVoltageAlarm === true && !now.includes("under-voltage"))
    now.push("under-voltage (rpi_volt alarm)");
  if (now.length > 0) return degraded(`now: ${now.join(", ")} — check the power supply and cooling`);
  const before = v.throttle === "unknown" ? [] : describeFlags(v.throttle.sinceBoot);
  if (before.length > 0) return ok(`not now; since boot: ${before.join(", ")}`);
  return ok("no under-voltage or throttling since boot");
}

function disk(v: Vitals, t: HealthThresholds): Check {
  if (v.dataDisk === "unknown") return unknown("data partition space unknown (statvfs failed)");
  const d = v.dataDisk;
  const line = `${mib(d.availableBytes)} available of ${mib(d.totalBytes)} on ${d.path}`;
  if (d.availableBytes < t.dataDiskLowBytes)
    return degraded(`data partition low: ${line} (below ${mib(t.dataDiskLowBytes)})`);
  return ok(line);
}
