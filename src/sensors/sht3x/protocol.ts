/**
 * SHT3x wire protocol (Sensirion SHT3x-DIS datasheet §4): 16-bit commands, data as
 * [msb, lsb, crc] words. Pure functions.
 *
 *   single shot, clock stretching disabled: 0x2400 high, 0x240B medium, 0x2416 low repeatability
 *   read-out: T msb, T lsb, CRC, RH msb, RH lsb, CRC   (a read before the end NACKs)
 *   T = -45 + 175 * S_T / 65535 °C        RH = 100 * S_RH / 65535 %
 */

export type Repeatability = "high" | "medium" | "low";

export const SINGLE_SHOT_NO_STRETCH: Record<Repeatability, number> = {
  high: 0x2400,
  medium: 0x240b,
  low: 0x2416,
};

/** Maximum measurement duration in ms (datasheet table 4), rounded up. */
export const MEASUREMENT_MS: Record<Repeatability, number> = { high: 16, medium: 7, low: 5 };

/** CRC-8, polynomial 0x31 (x^8 + x^5 + x^4 + 1), init 0xFF, no reflection, no final XOR. */
export function crc8(bytes: Uint8Array | number[]): number {
  let crc = 0xff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x80 ? ((crc << 1) ^ 0x31) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

export function temperatureC(raw: number): number {
  return -45 + (175 * raw) / 65535;
}

export function humidityPct(raw: number): number {
  return (100 * raw) / 65535;
}

/** Split a 6-byte read-out into its two words; `bad` names a word whose CRC failed. */
export function parseReadout(data: Uint8Array): {
  rawT: number;
  rawRH: number;
  bad?: "temperature" | "humidity";
} {
  if (data.length !== 6) throw new RangeError("SHT3x read-out is 6 bytes");
  const rawT = (data[0]! << 8) | data[1]!;
  const rawRH = (data[3]! << 8) | data[4]!;
  if (crc8([data[0]!, data[1]!]) !== data[2]) return { rawT, rawRH, bad: "temperature" };
  if (crc8([data[3]!, data[4]!]) !== data[5]) return { rawT, rawRH, bad: "humidity" };
  return { rawT, rawRH };
}
