/** The RTC as the clock model sees it, whichever path reaches the chip. */

export type RtcPath = "kernel" | "i2c";

/** One read of the RTC. */
export interface RtcReading {
  /** The RTC's time, ms since the epoch (whole seconds: the chip counts seconds); undefined if unreadable. */
  wallMs: number | undefined;
  /** False when the time must not be trusted (OSF set, or the kernel refuses to read it). */
  valid: boolean;
  /** The oscillator-stop flag: the oscillator stopped (e.g. battery loss) since the time was last set. */
  osf: boolean;
  /** Die temperature, °C, when the path exposes it. */
  temperatureC: number | undefined;
  /** Why the time is invalid, in words for logs and the CLI. */
  problem?: string;
}

/** Rtc is an opened RTC. */
export interface Rtc {
  readonly path: RtcPath;
  /** Where it is, e.g. "/sys/class/rtc/rtc0 (rtc-ds1307 1-0068)" or "DS3231 at 0x68 on bus 1". */
  readonly description: string;
  read(): Promise<RtcReading>;
  /**
   * Set the RTC to `wallMs` (and clear OSF): registers on the direct I2C path, RTC_SET_TIME on the
   * kernel path (which waits for the next whole second). The clock writes only on the direct
   * path; on the kernel path the kernel keeps the RTC set while NTP-synced (clock.ts).
   */
  write?(wallMs: number): Promise<void>;
  /** The aging offset register (signed, ~0.1 ppm per step), direct path only. */
  agingOffset?(): Promise<number>;
  /** Release whatever was opened (the bus, when it was opened for this RTC). */
  close(): Promise<void>;
}
