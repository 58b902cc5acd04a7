import type { AnchorSource, TimeQuality } from "./types.ts";

/** ClockStatus is the clock model's state as health, metrics and the status page show it. */
export interface ClockStatus {
  source: AnchorSource | "none";
  quality: Exclude<TimeQuality, "corrected">;
  synced: boolean;
  estimatedErrorMs: number | undefined;
  /** RTC minus system clock, ms; undefined without a readable RTC. */
  rtcOffsetMs: number | undefined;
  /** Seconds since the last ntp/rtc anchor; undefined if none this boot. */
  lastGoodAnchorAgeS: number | undefined;
  rtcPath: "kernel" | "i2c" | "none";
  bootId: string;
}
