/**
 * The Raspberry Pi firmware's throttle word, as `vcgencmd get_throttled` prints it and as the
 * firmware driver exposes it in sysfs (…/soc:firmware/get_throttled, hex). Bit layout:
 *
 *   bit  0  under-voltage now            bit 16  under-voltage has occurred since boot
 *   bit  1  ARM frequency capped now     bit 17  frequency capping has occurred
 *   bit  2  throttled now                bit 18  throttling has occurred
 *   bit  3  soft temperature limit now   bit 19  soft temperature limit has occurred
 *
 * e.g. 0x50005 = under-voltage and throttled, now and before; 0x50000 = both happened earlier
 * but not now.
 */

/** ThrottleFlags is one half (now, or since boot) of the throttle word. */
export interface ThrottleFlags {
  underVoltage: boolean;
  frequencyCapped: boolean;
  throttled: boolean;
  softTemperatureLimit: boolean;
}

export interface ThrottleState {
  raw: number;
  now: ThrottleFlags;
  sinceBoot: ThrottleFlags;
}

export const THROTTLE_FLAG_NAMES = [
  "underVoltage",
  "frequencyCapped",
  "throttled",
  "softTemperatureLimit",
] as const;

function flagsAt(raw: number, shift: number): ThrottleFlags {
  const bit = (n: number) => ((raw >>> (shift + n)) & 1) === 1;
  return { underVoltage: bit(0), frequencyCapped: bit(1), throttled: bit(2), softTemperatureLimit: bit(3) };
}

/** decodeThrottled splits the firmware's throttle word into what is happening now and since boot. */
export function decodeThrottled(raw: number): ThrottleState {
  return { raw, now: flagsAt(raw, 0), sinceBoot: flagsAt(raw, 16) };
}

/** parseThrottled reads the sysfs text ("50005", "0x50005", with or without newline); undefined if garbled. */
export function parseThrottled(text: string): ThrottleState | undefined {
  const s = text.trim().replace(/^0x/i, "");
  if (!/^[0-9a-f]{1,8}$/i.test(s)) return undefined;
  return decodeThrottled(Number.parseInt(s, 16));
}

/** The names of the flags set, for a reason line: "under-voltage, throttled". */
export function describeFlags(flags: ThrottleFlags): string[] {
  const names: string[] = [];
  if (flags.underVoltage) names.push("under-voltage");
  if (flags.frequencyCapped) names.push("frequency capped");
  if (flags.throttled) names.push("throttled");
  if (flags.softTemperatureLimit) names.push("soft temperature limit");
  return names;
}
