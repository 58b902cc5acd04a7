export {
  EARLIER_BOOT_NOTE,
  NTP_DEFAULT_UNCERTAINTY_MS,
  ntpErrorAt,
  publishStamp,
  SYSTEM_UNCERTAINTY_MS,
} from "./anchors.ts";
export { BOOT_ID_PATH, ClockError, monotonicNs, readBootId } from "./boot.ts";
export {
  CRYSTAL_PPM,
  CRYSTAL_WANDER_PPM,
  compactAnchors,
  crystalRate,
  effectiveAnchors,
  MAX_ANCHORS_PER_BOOT,
  RTC_PPM,
  RTC_PPM_WIDE,
  RTC_UNVERIFIED_MS,
  rtcPpmAt,
} from "./bounds.ts";
export {
  type Clock,
  type ClockOptions,
  createClock,
  type IntervalScheduler,
  intervalScheduler,
  TRUST_SAVE_INTERVAL_MS,
} from "./clock.ts";
export { type ClockReport, clockReport } from "./report.ts";
export { Ds3231 } from "./rtc/ds3231.ts";
export { type RtcSample, readRtcEdge, readRtcPlain } from "./rtc/edge.ts";
export { Ds3231Model, type Ds3231ModelOptions } from "./rtc/model.ts";
export { linuxI2cOpener, type OpenI2cBus } from "./rtc/open-bus.ts";
export { type OpenRtcOptions, openRtc, type RtcChoice, type RtcMode } from "./rtc/select.ts";
export type { Rtc, RtcPath, RtcReading } from "./rtc/types.ts";
export { realScheduler, type Scheduler } from "./scheduler.ts";
export type { ClockStatus } from "./status.ts";
export {
  adjtimexSyncSource,
  fileSyncSource,
  type SyncSource,
  type SyncState,
  syncSourceFromConfig,
} from "./sync.ts";
export { learnRtcTrust, type RtcTrust, trustedOffset } from "./trust.ts";
export { readRtcTrust, removeRtcTrust, rtcTrustPath, writeRtcTrust } from "./trust-file.ts";
export type { Anchor, AnchorSource, AnchorStore, PublishStamp, Stamp, TimeQuality } from "./types.ts";
