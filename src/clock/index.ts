export {
  bestAnchor,
  bestPerSource,
  compareAnchors,
  EARLIER_BOOT_NOTE,
  publishStamp,
  SYSTEM_UNCERTAINTY_MS,
  wallFromAnchor,
} from "./anchors.ts";
export { BOOT_ID_PATH, ClockError, monotonicNs, readBootId } from "./boot.ts";
export {
  type Clock,
  type ClockOptions,
  createClock,
  type IntervalScheduler,
  intervalScheduler,
  NTP_DEFAULT_UNCERTAINTY_MS,
  RTC_UNCERTAINTY_MS,
} from "./clock.ts";
export { Ds3231 } from "./rtc/ds3231.ts";
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
export type { Anchor, AnchorSource, AnchorStore, PublishStamp, Stamp, TimeQuality } from "./types.ts";
