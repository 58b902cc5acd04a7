/**
 * The RTC class uAPI (linux/rtc.h) as numbers and a byte layout. Pure: test/unit/hal-layout.test.ts
 * compares it with what gcc makes of the kernel header.
 *
 *   struct rtc_time  36 bytes: nine ints, tm_sec @0, tm_min @4, tm_hour @8, tm_mday @12,
 *                    tm_mon @16 (0–11), tm_year @20 (years since 1900), tm_wday @24, tm_yday @28,
 *                    tm_isdst @32 — always UTC here (the kernel's RTC time is UTC by convention).
 *   RTC_RD_TIME  = _IOR('p', 0x09, struct rtc_time)
 *   RTC_SET_TIME = _IOW('p', 0x0a, struct rtc_time)
 */

export const RTC_TIME_SIZE = 36;
const IOC_WRITE = 1;
const IOC_READ = 2;
const ioc = (dir: number, type: number, nr: number, size: number) =>
  ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0;
export const RTC_RD_TIME = ioc(IOC_READ, 0x70, 0x09, RTC_TIME_SIZE);
export const RTC_SET_TIME = ioc(IOC_WRITE, 0x70, 0x0a, RTC_TIME_SIZE);

/** struct rtc_time for the whole UTC second containing `wallMs`. */
export function encodeRtcTime(wallMs: number): Uint8Array {
  const d = new Date(Math.floor(wallMs / 1000) * 1000);
  const yday = Math.floor((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000);
  const fields = [
    d.getUTCSeconds(),
    d.getUTCMinutes(),
    d.getUTCHours(),
    d.getUTCDate(),
    d.getUTCMonth(),
    d.getUTCFullYear() - 1900,
    d.getUTCDay(),
    yday,
    0,
  ];
  const buf = new Uint8Array(RTC_TIME_SIZE);
  const v = new DataView(buf.buffer);
  fields.forEach((x, i) => {
    v.setInt32(i * 4, x, true);
  });
  return buf;
}

/** The UTC time, ms, in a struct rtc_time. */
export function decodeRtcTime(buf: Uint8Array): number {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const i = (k: number) => v.getInt32(k * 4, true);
  return Date.UTC(i(5) + 1900, i(4), i(3), i(2), i(1), i(0));
}
