/**
 * struct timex for adjtimex(2), 64-bit Linux layout (x86_64 and aarch64 share it; checked
 * against <sys/timex.h> by test/unit/clock-timex.test.ts):
 *
 *   offset  field      type
 *        0  modes      unsigned int   (0 = read only, change nothing)
 *        8  offset     long
 *       16  freq       long
 *       24  maxerror   long  µs, grows by 500 ppm while no time source corrects it
 *       32  esterror   long  µs, the synchroniser's estimate of its error
 *       40  status     int   STA_* bits; STA_UNSYNC set = the clock is not synchronised
 *      ...  (the rest: constant, precision, tolerance, time, tick, pps…, tai, padding)
 *      208  sizeof(struct timex)
 *
 * adjtimex returns the clock state; TIME_ERROR (5) means "not synchronised" as well.
 */

export const TIMEX_SIZE = 208;
export const TIMEX_OFFSET = { modes: 0, maxerror: 24, esterror: 32, status: 40 } as const;
export const STA_UNSYNC = 0x0040;
export const TIME_ERROR = 5;

export interface Timex {
  modes: number;
  maxerrorUs: number;
  esterrorUs: number;
  status: number;
}

/** A read-only (modes = 0) struct timex, in a buffer that will not move during the call. */
export function encodeTimexQuery(): Uint8Array {
  return new Uint8Array(new ArrayBuffer(TIMEX_SIZE));
}

export function decodeTimex(buf: Uint8Array): Timex {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    modes: v.getUint32(TIMEX_OFFSET.modes, true),
    maxerrorUs: Number(v.getBigInt64(TIMEX_OFFSET.maxerror, true)),
    esterrorUs: Number(v.getBigInt64(TIMEX_OFFSET.esterror, true)),
    status: v.getInt32(TIMEX_OFFSET.status, true),
  };
}

/** The clock's synchronisation as the kernel sees it. */
export interface KernelSync {
  synced: boolean;
  /** esterror in ms (the synchroniser's own estimate). */
  estimatedErrorMs: number;
  /** maxerror in ms (the kernel's worst-case bound). */
  maxErrorMs: number;
}

/** Interpret adjtimex's return value and struct: synced = not TIME_ERROR and STA_UNSYNC clear. */
export function interpretTimex(state: number, timex: Timex): KernelSync {
  return {
    synced: state !== TIME_ERROR && (timex.status & STA_UNSYNC) === 0,
    estimatedErrorMs: timex.esterrorUs / 1000,
    maxErrorMs: timex.maxerrorUs / 1000,
  };
}
