/**
 * The clock model's vocabulary, shared by the queue (which stores stamps and anchors) and the
 * publisher (which asks for the time to publish). See shared DESIGN "Time".
 */

/** How far a wall time can be trusted: kernel clock NTP-synced, anchored to a valid RTC, neither; or re-stamped later. */
export type TimeQuality = "ntp" | "rtc" | "unsynced" | "corrected";

/** Stamp is what every reading carries from the moment of capture. */
export interface Stamp {
  /** /proc/sys/kernel/random/boot_id of the boot the reading was captured in. */
  bootId: string;
  /** CLOCK_MONOTONIC in ns at capture (comparable across process restarts within one boot). */
  monoNs: bigint;
  /** The wall time believed at capture, ms since the Unix epoch. */
  wallMs: number;
  /** Quality at capture: never "corrected". */
  tq: Exclude<TimeQuality, "corrected">;
}

/** "rtc-set" marks the moment the clock wrote the RTC: its offset jumps there (bounds.ts). */
export type AnchorSource = "ntp" | "rtc" | "system" | "rtc-set";

/** Anchor ties a monotonic instant of one boot to a wall time from a source. */
export interface Anchor {
  bootId: string;
  monoNs: bigint;
  wallMs: number;
  source: AnchorSource;
  /** ntp: the kernel's error estimate; rtc: how well the RTC's tick instant is known (bounds.ts). */
  uncertaintyMs: number;
  /** rtc: the RTC's stated rate at its temperature, ppm (stored with the anchor); absent = RTC_PPM_WIDE. */
  ppm?: number;
}

/**
 * AnchorStore persists anchors (the queue database implements it). The clock decides what to keep
 * of the current boot (compactAnchors) and hands the store what it dropped; the store deletes
 * those in the same transaction as the insert, and may thin earlier boots by its own rule.
 */
export interface AnchorStore {
  /** Save `anchor`; delete `drop` (anchors of the same boot, matched by mono_ns and source). */
  saveAnchor(anchor: Anchor, drop?: readonly Anchor[]): void;
  /** All anchors recorded for a boot, any order. */
  anchorsFor(bootId: string): Anchor[];
}

/** PublishStamp is the time sent with a reading: possibly re-stamped from a better anchor. */
export interface PublishStamp {
  wallMs: number;
  tq: TimeQuality;
  /** Error bound of wallMs, ms: the true time is within wallMs ± errMs (published as te_ms). */
  errMs: number;
  /** Set when the stamp could not be corrected, e.g. "earlier boot, never anchored". */
  note?: string;
}
