/** ClockStatus is the clock's part of the runtime status (health, metrics, the `clock` command). */
import type { AnchorSource, TimeQuality } from "./types.ts";

export interface ClockStatus {
  /** The best source this boot has an anchor from: ntp, else rtc, else system ("none" before the first). */
  source: AnchorSource | "none";
  quality: Exclude<TimeQuality, "corrected">;
  synced: boolean;
  /** The error bound of a stamp taken now, ms (the kernel's estimate while synced). */
  estimatedErrorMs: number | undefined;
  /** RTC minus system clock, ms; undefined without a readable RTC. */
  rtcOffsetMs: number | undefined;
  /** Seconds since the last ntp/rtc anchor; undefined if none this boot. */
  lastGoodAnchorAgeS: number | undefined;
  rtcPath: "kernel" | "i2c" | "none";
  bootId: string;
  /** CLOCK_MONOTONIC's rate against the RTC, ppm; undefined until two RTC reads measured it. */
  crystalPpm: number | undefined;
  /** Anchors kept for this boot (bounded, bounds.ts MAX_ANCHORS_PER_BOOT). */
  anchors: number;
}
