/**
 * RuntimeStatus is the live view that health, metrics, sd_notify STATUS and the `status` command
 * read. It only composes: each part's type lives with the module that produces it, and the
 * readers (health/, system/) declare the shape they read, so none of them depends on runtime/.
 */
import type { ClockStatus } from "../clock/index.ts";
import type { PublisherStats } from "../publish/index.ts";
import type { QueueStats } from "../queue/index.ts";
import type { SensorStats } from "./sampler.ts";

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
