/**
 * SystemStatus is the part of the runtime snapshot the systemd surfaces (STATUS= line, watchdog
 * gate) read, in the producing modules' own types. The runtime's RuntimeStatus satisfies it
 * structurally, so system/ never imports runtime/.
 */
import type { ClockStatus } from "../clock/index.ts";
import type { PublisherStats } from "../publish/index.ts";
import type { QueueStats } from "../queue/index.ts";

export interface SystemStatus {
  queue: QueueStats;
  publisher: PublisherStats;
  sensors: ReadonlyArray<{ lastError: string | undefined }>;
  clock: ClockStatus;
  /** CLOCK_MONOTONIC ms of the sampler loop's last turn. */
  samplerProgressMonoMs: number;
  startedMonoMs: number;
}
