/**
 * DS3231 register codec (Maxim DS3231 datasheet, "Timekeeping Registers"). Pure functions.
 *
 *   reg  bit7     bit6   bit5     bit4     bits3..0   meaning
 *   00h  0        10 seconds (0-5)          seconds    BCD 00-59
 *   01h  0        10 minutes (0-5)          minutes    BCD 00-59
 *   02h  0        12/24̅   AM̅/PM|20h 10 hour  hour       bit6=1: 12-hour, bit5 = PM, hours 1-12
 *                                                      bit6=0: 24-hour, bits5..4 = tens 0-2
 *   03h  0 …                                 day        1-7 (user-defined; we write Sunday = 1, as Linux does)
 *   04h  0        0      10 date (0-3)       date       BCD 01-31
 *   05h  century  0      0        10 month   month      BCD 01-12; century toggles when year wraps 99→00
 *   06h  10 year (0-9)                       year       BCD 00-99; year = 2000 + yy + 100·century
 *   0Eh  control: EOSC̅ BBSQW CONV RS2 RS1 INTCN A2IE A1IE
 *   0Fh  status:  OSF  0 0 0 EN32kHz BSY A2F A1F — OSF = 1: the oscillator stopped, time invalid
 *   10h  aging offset, signed 8-bit
 *   11h  temperature MSB, signed integer °C;  12h bits 7..6: fraction in 0.25 °C steps
 *
 * Dates span 2000-01-01 … 2199-12-31. The chip's leap-year rule is year % 4 == 0, so it is
 * wrong for 2100 (it inserts Feb 29); we decode what it says and it is re-set when synced.
 */
import { FieldrelayError } from "../../errors/index.ts";

export const REG_SECONDS = 0x00;
export const REG_CONTROL = 0x0e;
export const REG_STATUS = 0x0f;
export const REG_AGING = 0x10;
export const REG_TEMP_MSB = 0x11;
export const REG_LAST = 0x12;
export const STATUS_OSF = 0x80;
export const HOURS_12H = 0x40;
export const HOURS_PM = 0x20;
export const MONTH_CENTURY = 0x80;
export const DS3231_ADDRESS = 0x68;

export const MIN_MS = Date.UTC(2000, 0, 1);
export const MAX_MS = Date.UTC(2200, 0, 1) - 1000;

/** Ds3231Error is a register value the chip should never hold, or a time it cannot hold. */
export class Ds3231Error extends FieldrelayError {}

export function toBcd(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 99) throw new RangeError(`BCD holds 0-99, got ${n}`);
  return ((n / 10) | 0) * 16 + (n % 10);
}

export function fromBcd(b: number): number {
  const hi = b >> 4;
  const lo = b & 0x0f;
  if (hi > 9 || lo > 9) throw new Ds3231Error(`0x${b.toString(16).padStart(2, "0")} is not a BCD value`);
  return hi * 10 + lo;
}

/** 24-hour hour → the hours register, in 24- or 12-hour mode. */
export function encodeHours(hour24: number, twelveHour: boolean): number {
  if (!twelveHour) return toBcd(hour24);
  const pm = hour24 >= 12;
  const h12 = hour24 % 12 === 0 ? 12 : hour24 % 12;
  return HOURS_12H | (pm ? HOURS_PM : 0) | toBcd(h12);
}

/** The hours register (either mode) → 24-hour hour. */
export function decodeHours(reg: number): number {
  if (reg & HOURS_12H) {
    const h12 = fromBcd(reg & 0x1f);
    if (h12 < 1 || h12 > 12) throw new Ds3231Error(`12-hour register holds hour ${h12}`);
    const pm = (reg & HOURS_PM) !== 0;
    return (h12 % 12) + (pm ? 12 : 0);
  }
  const h = fromBcd(reg & 0x3f);
  if (h > 23) throw new Ds3231Error(`24-hour register holds hour ${h}`);
  return h;
}

/** Registers 00h-06h for a UTC time (whole seconds; sub-second part dropped). */
export function encodeTime(wallMs: number, twelveHour = false): Uint8Array {
  if (!(wallMs >= MIN_MS && wallMs <= MAX_MS + 999))
    throw new Ds3231Error(`${new Date(wallMs).toISOString()} is outside what a DS3231 holds (2000-2199)`, {
      hint: "set the system clock first (is NTP synchronised?)",
    });
  const d = new Date(wallMs);
  const year = d.getUTCFullYear();
  const century = year >= 2100;
  return Uint8Array.of(
    toBcd(d.getUTCSeconds()),
    toBcd(d.getUTCMinutes()),
    encodeHours(d.getUTCHours(), twelveHour),
    d.getUTCDay() + 1,
    toBcd(d.getUTCDate()),
    (century ? MONTH_CENTURY : 0) | toBcd(d.getUTCMonth() + 1),
    toBcd(year % 100),
  );
}

/** Registers 00h-06h → UTC ms; throws Ds3231Error for impossible values (garbage after power loss). */
export function decodeTime(regs: Uint8Array): number {
  if (regs.length < 7) throw new Ds3231Error(`need 7 time registers, got ${regs.length}`);
  const second = fromBcd(regs[0]! & 0x7f);
  const minute = fromBcd(regs[1]! & 0x7f);
  const hour = decodeHours(regs[2]!);
  const date = fromBcd(regs[4]! & 0x3f);
  const month = fromBcd(regs[5]! & 0x1f);
  const year = 2000 + fromBcd(regs[6]!) + (regs[5]! & MONTH_CENTURY ? 100 : 0);
  if (second > 59 || minute > 59 || month < 1 || month > 12 || date < 1 || date > daysIn(year, month))
    throw new Ds3231Error(
      `time registers hold an impossible date ${year}-${month}-${date} ${hour}:${minute}:${second}`,
      { hint: "the RTC lost its time; set it with `fieldrelay rtc set --from-system` once NTP is synced" },
    );
  return Date.UTC(year, month - 1, date, hour, minute, second);
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Registers 11h-12h → °C (signed, 0.25 °C steps). */
export function decodeTemperature(msb: number, lsb: number): number {
  const raw = ((msb << 2) | (lsb >> 6)) & 0x3ff;
  return (raw & 0x200 ? raw - 0x400 : raw) / 4;
}

/** °C → registers 11h-12h (rounded to 0.25 °C). */
export function encodeTemperature(temperatureC: number): [number, number] {
  const raw = Math.round(temperatureC * 4) & 0x3ff;
  return [raw >> 2, (raw & 3) << 6];
}

/** Aging offset register → signed steps. */
export function decodeAging(reg: number): number {
  return reg & 0x80 ? reg - 0x100 : reg;
}
