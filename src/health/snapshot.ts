/**
 * HealthStatus is the runtime snapshot health, metrics and the status page read: the producing
 * modules' own stats types, composed. The runtime's RuntimeStatus satisfies it structurally, so
 * health/ never imports runtime/.
 */
import type { ClockStatus } from "../clock/index.ts";
import type { PublisherStats } from "../publish/index.ts";
import type { QueueStats } from "../queue/index.ts";

/** SensorHealth is what health reads of one sensor (the sampler's SensorStats has these fields). */
export interface SensorHealth {
  name: string;
  reads: number;
  failures: number;
  /** Monotonic seconds since the last successful read; undefined if none yet. */
  lastSuccessAgeS: number | undefined;
  lastError: string | undefined;
}

export interface HealthStatus {
  queue: QueueStats;
  publisher: PublisherStats;
  sensors: readonly SensorHealth[];
  clock: ClockStatus;
  /** CLOCK_MONOTONIC ms of the sampler loop's last turn. */
  samplerProgressMonoMs: number;
  startedMonoMs: number;
}
