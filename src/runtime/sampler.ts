/**
 * Sampler runs every configured sensor on its own interval, turns each Sample into a Reading
 * stamped by the clock at the moment of measurement, and hands it to capture. The clock is read
 * before and after each read(); the driver's stampAt (sensors/types.ts) says which moment counts:
 * before it, its midpoint (conversions: DS18B20 ~750 ms, BME280, SHT3x, ADS1115), or after it
 * (pulse counts). A failing sensor is
 * counted, logged when its state changes (not on every failure) and retried; the others go on.
 */
import type { Stamp } from "../clock/types.ts";
import type { SensorConfig } from "../config/index.ts";
import { describeError } from "../errors/index.ts";
import type { Logger } from "../log/index.ts";
import type { CaptureResult, FieldValue, Reading } from "../queue/types.ts";
import { findDriver, type Sample, type Sensor, type SensorContext, type StampAt } from "../sensors/index.ts";
import type { SensorStats } from "./status.ts";

export interface SamplerOptions {
  sensors: SensorConfig[];
  ctx: SensorContext;
  capture: (reading: Reading) => CaptureResult;
  now: () => Stamp;
  log: Logger;
}

/** Apply the sensor's per-field scale and offset (numbers only): value * scale + offset. */
export function scaleValues(
  values: Record<string, FieldValue>,
  scale: Record<string, number>,
  offset: Record<string, number>,
): Record<string, FieldValue> {
  const out: Record<string, FieldValue> = {};
  for (const [name, value] of Object.entries(values)) {
    out[name] = typeof value === "number" ? value * (scale[name] ?? 1) + (offset[name] ?? 0) : value;
  }
  return out;
}

/** Build the readings of one sample set, each stamped with the same capture stamp. */
export function toReadings(config: SensorConfig, samples: Sample[], stamp: Stamp): Reading[] {
  return samples.map((s) => ({
    ...stamp,
    stream: s.stream ?? config.stream ?? config.name,
    priority: s.priority ?? config.priority,
    qos: config.qos,
    values: scaleValues(s.values, config.scale, config.offset),
    ...(s.anomaly ? { anomaly: true } : {}),
  }));
}

/** The stamp of a measurement from the clock readings before and after read() (module comment). */
export function measurementStamp(at: StampAt, before: Stamp, after: () => Stamp): Stamp {
  if (at === "start") return before;
  const end = after();
  if (at === "end" || end.bootId !== before.bootId) return end;
  // Monotonic midpoint; the wall time follows the start stamp's (one quality per stamp).
  const half = (end.monoNs - before.monoNs) / 2n;
  return { ...before, monoNs: before.monoNs + half, wallMs: before.wallMs + Number(half) / 1e6 };
}

interface Slot {
  config: SensorConfig;
  sensor: Sensor | undefined;
  stats: SensorStats;
  lastSuccessMonoMs: number | undefined;
  failing: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export class Sampler {
  private readonly slots: Slot[];
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private stopped = false;
  /** CLOCK_MONOTONIC ms of the loop's last turn; the watchdog and /health read it. */
  progressMonoMs: number;

  constructor(private readonly options: SamplerOptions) {
    this.progressMonoMs = options.ctx.monoMs();
    this.slots = options.sensors.map((config) => ({
      config,
      sensor: undefined,
      stats: {
        name: config.name,
        driver: config.driver,
        reads: 0,
        failures: 0,
        lastSuccessAgeS: undefined,
        lastError: undefined,
      },
      lastSuccessMonoMs: undefined,
      failing: false,
      timer: undefined,
    }));
  }

  start(): void {
    this.heartbeat = setInterval(() => {
      this.progressMonoMs = this.options.ctx.monoMs();
    }, 1000);
    for (const slot of this.slots) this.schedule(slot, 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeat);
    for (const slot of this.slots) clearTimeout(slot.timer);
    await Promise.allSettled(this.slots.map((s) => s.sensor?.close()));
  }

  stats(): SensorStats[] {
    const now = this.options.ctx.monoMs();
    return this.slots.map((s) => ({
      ...s.stats,
      lastSuccessAgeS: s.lastSuccessMonoMs === undefined ? undefined : (now - s.lastSuccessMonoMs) / 1000,
    }));
  }

  names(): string[] {
    return this.slots.map((s) => s.config.name);
  }

  /** Read one sensor now and capture the result (remote `sample` command). */
  async sampleNow(name: string): Promise<Reading[]> {
    const slot = this.slots.find((s) => s.config.name === name);
    if (!slot) throw new Error(`no sensor named "${name}"; configured: ${this.names().join(", ") || "none"}`);
    return this.readOnce(slot, true);
  }

  private schedule(slot: Slot, delayMs: number): void {
    if (this.stopped) return;
    slot.timer = setTimeout(async () => {
      const started = this.options.ctx.monoMs();
      this.progressMonoMs = started;
      await this.readOnce(slot, false).catch(() => {});
      const intervalMs = slot.config.interval_s * 1000;
      this.schedule(slot, Math.max(0, intervalMs - (this.options.ctx.monoMs() - started)));
    }, delayMs);
  }

  private async readOnce(slot: Slot, rethrow: boolean): Promise<Reading[]> {
    const { log } = this.options;
    try {
      if (!slot.sensor) {
        const driver = findDriver(slot.config.driver);
        if (!driver) throw new Error(`unknown driver "${slot.config.driver}"`);
        slot.sensor = await driver.open(slot.config as never, this.options.ctx);
      }
      const before = this.options.now();
      const samples = await slot.sensor.read();
      const stamp = measurementStamp(slot.sensor.stampAt ?? "start", before, this.options.now);
      const readings = toReadings(slot.config, samples, stamp);
      for (const reading of readings) {
        const result = this.options.capture(reading);
        if (!result.ok) log.warn({ sensor: slot.config.name, reason: result.detail }, "reading refused");
      }
      slot.stats.reads++;
      slot.lastSuccessMonoMs = this.options.ctx.monoMs();
      slot.stats.lastError = undefined;
      if (slot.failing) log.info({ sensor: slot.config.name }, "sensor recovered");
      slot.failing = false;
      return readings;
    } catch (error) {
      slot.stats.failures++;
      slot.stats.lastError = describeError(error);
      if (!slot.failing) {
        log.error(
          {
            sensor: slot.config.name,
            driver: slot.config.driver,
            error: slot.stats.lastError,
          },
          "sensor read failed",
        );
      }
      slot.failing = true;
      if (rethrow) throw error;
      return [];
    }
  }
}
