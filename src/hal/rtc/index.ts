/**
 * The RTC class character device (/dev/rtcN) through ioctl(2) on libc (bun:ffi): RTC_SET_TIME and
 * RTC_RD_TIME with a struct rtc_time (uapi.ts). What `hwclock --systohc` does, without hwclock.
 * Errors are SyscallErrors naming the node and the call (open, RTC_SET_TIME, RTC_RD_TIME).
 */
import { close, ioctl, O_RDONLY, open } from "../libc/index.ts";
import { decodeRtcTime, encodeRtcTime, RTC_RD_TIME, RTC_SET_TIME, RTC_TIME_SIZE } from "./uapi.ts";

export { decodeRtcTime, encodeRtcTime, RTC_RD_TIME, RTC_SET_TIME, RTC_TIME_SIZE } from "./uapi.ts";

function withNode<T>(node: string, body: (fd: number) => T): T {
  const fd = open(node, O_RDONLY);
  try {
    return body(fd);
  } finally {
    close(fd);
  }
}

/** Set the RTC at `node` to the whole UTC second of `wallMs`. */
export function setRtcTime(node: string, wallMs: number): void {
  withNode(node, (fd) => ioctl(fd, RTC_SET_TIME, encodeRtcTime(wallMs), node, "RTC_SET_TIME"));
}

/** The RTC's time at `node`, ms (whole seconds). */
export function readRtcTime(node: string): number {
  const buf = new Uint8Array(RTC_TIME_SIZE);
  withNode(node, (fd) => ioctl(fd, RTC_RD_TIME, buf, node, "RTC_RD_TIME"));
  return decodeRtcTime(buf);
}
