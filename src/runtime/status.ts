/**
 * RuntimeStatus is the live view that health, metrics, sd_notify STATUS and the `status` command
 * read. Each part reports a snapshot; none of them depends on the health code.
 */
import type { ClockStatus } from "../clock/index.ts";
import type { QueueStats } from "../queue/types.ts";

export type { ClockStatus };

export interface PublisherStats {
  connected: boolean;
  /** Connection attempts that followed a lost or failed connection. */
  reconnects: number;
  /** The backoff delay currently being waited, seconds (0 when connected). */
  backoffS: number;
  inflight: number;
  published: number;
  delivered: number;
  /** Messages sent again after a reconnect or restart (possible duplicates). */
  resent: number;
  lastError: string | undefined;
}

export interface SensorStats {
  name: string;
  driver: string;
  reads: number;
  failures: number;
  /** Monotonic seconds since the last successful read; undefined if none yet. */
  lastSuccessAgeS: number | undefined;
  lastError: string | undefined;
}

export interface RuntimeStatus {
  queue: QueueStats;
  publisher: PublisherStats;
  sensors: SensorStats[];
  clock: ClockStatus;
  /** CLOCK_MONOTONIC ms of the sampler loop's last turn. */
  samplerProgressMonoMs: number;
  dataDir: string;
  startedMonoMs: number;
}
