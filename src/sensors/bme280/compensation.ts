/**
 * BME280 trimming parameters and the datasheet's integer compensation (Bosch BME280 datasheet
 * BST-BME280-DS002, §4.2.2 and §4.2.3), transcribed operation by operation: 32-bit signed
 * arithmetic via Math.imul and `| 0` (wrapping exactly as the reference C does), the pressure
 * formula in 64-bit via BigInt. Pure functions; tested against the datasheet example and
 * against the reference C compiled with gcc.
 */

/** Trimming parameters (dig_*), read once from NVM at 0x88–0xA1 and 0xE1–0xE7. */
export interface Bme280Trimming {
  T1: number;
  T2: number;
  T3: number;
  P1: number;
  P2: number;
  P3: number;
  P4: number;
  P5: number;
  P6: number;
  P7: number;
  P8: number;
  P9: number;
  H1: number;
  H2: number;
  H3: number;
  H4: number;
  H5: number;
  H6: number;
}

export const CALIB_TP_START = 0x88;
export const CALIB_TP_LENGTH = 26; // 0x88..0xA1 (H1 sits at 0xA1)
export const CALIB_H_START = 0xe1;
export const CALIB_H_LENGTH = 7; // 0xE1..0xE7

/** Decode the two calibration blocks (datasheet table 16). */
export function parseTrimming(tp: Uint8Array, h: Uint8Array): Bme280Trimming {
  if (tp.length !== CALIB_TP_LENGTH || h.length !== CALIB_H_LENGTH)
    throw new RangeError(`calibration blocks must be ${CALIB_TP_LENGTH} and ${CALIB_H_LENGTH} bytes`);
  const v = new DataView(tp.buffer, tp.byteOffset, tp.byteLength);
  const u16 = (at: number) => v.getUint16(at, true);
  const s16 = (at: number) => v.getInt16(at, true);
  const s8 = (b: number) => (b << 24) >> 24;
  return {
    T1: u16(0),
    T2: s16(2),
    T3: s16(4),
    P1: u16(6),
    P2: s16(8),
    P3: s16(10),
    P4: s16(12),
    P5: s16(14),
    P6: s16(16),
    P7: s16(18),
    P8: s16(20),
    P9: s16(22),
    H1: tp[25]!,
    H2: ((h[0]! | (h[1]! << 8)) << 16) >> 16,
    H3: h[2]!,
    // dig_H4 = 0xE4[7:0] / 0xE5[3:0] and dig_H5 = 0xE6[7:0] / 0xE5[7:4], both signed 12-bit.
    H4: (s8(h[3]!) * 16) | (h[4]! & 0x0f),
    H5: (s8(h[5]!) * 16) | (h[4]! >> 4),
    H6: s8(h[6]!),
  };
}

/** Raw ADC words as burst-read from 0xF7..0xFE. */
export interface Bme280Raw {
  adc_T: number;
  adc_P: number;
  adc_H: number;
}

/** A channel that was skipped (oversampling 0) or never measured reads as these values. */
export const ADC_SKIPPED_TP = 0x80000;
export const ADC_SKIPPED_H = 0x8000;

export function parseRaw(data: Uint8Array): Bme280Raw {
  if (data.length !== 8) throw new RangeError("BME280 data block is 8 bytes (0xF7..0xFE)");
  return {
    adc_P: (data[0]! << 12) | (data[1]! << 4) | (data[2]! >> 4),
    adc_T: (data[3]! << 12) | (data[4]! << 4) | (data[5]! >> 4),
    adc_H: (data[6]! << 8) | data[7]!,
  };
}

/** Temperature in 0.01 °C and t_fine (shared with pressure and humidity). Datasheet §4.2.3. */
export function compensateTemperature(adc_T: number, c: Bme280Trimming): { t_01c: number; t_fine: number } {
  const var1 = Math.imul(((adc_T >> 3) - (c.T1 << 1)) | 0, c.T2) >> 11;
  const d = ((adc_T >> 4) - c.T1) | 0;
  const var2 = Math.imul(Math.imul(d, d) >> 12, c.T3) >> 14;
  const t_fine = (var1 + var2) | 0;
  return { t_01c: (Math.imul(t_fine, 5) + 128) >> 8, t_fine };
}

/** Pressure in Pa as Q24.8 (divide by 256), 64-bit variant. Returns 0 where the C returns 0. */
export function compensatePressure(adc_P: number, t_fine: number, c: Bme280Trimming): number {
  // Wrap to int64 before every right shift or division, where C's wrapped value differs.
  const wrap = (x: bigint) => BigInt.asIntN(64, x);
  let var1 = BigInt(t_fine) - 128000n;
  let var2 = wrap(var1 * var1 * BigInt(c.P6));
  var2 = wrap(var2 + ((var1 * BigInt(c.P5)) << 17n));
  var2 = wrap(var2 + (BigInt(c.P4) << 35n));
  var1 = wrap((wrap(var1 * var1 * BigInt(c.P3)) >> 8n) + ((var1 * BigInt(c.P2)) << 12n));
  var1 = wrap(((1n << 47n) + var1) * BigInt(c.P1)) >> 33n;
  if (var1 === 0n) return 0; // avoid division by zero, as the reference does
  let p = 1048576n - BigInt(adc_P);
  // C's integer division truncates toward zero, as BigInt division does.
  p = wrap(wrap(((p << 31n) - var2) * 3125n) / var1);
  var1 = wrap(BigInt(c.P9) * (p >> 13n) * (p >> 13n)) >> 25n;
  var2 = wrap(BigInt(c.P8) * p) >> 19n;
  p = wrap((wrap(p + var1 + var2) >> 8n) + (BigInt(c.P7) << 4n));
  return Number(BigInt.asUintN(32, p));
}

/** Relative humidity in %RH as Q22.10 (divide by 1024). Datasheet §4.2.3. */
export function compensateHumidity(adc_H: number, t_fine: number, c: Bme280Trimming): number {
  let v = (t_fine - 76800) | 0;
  const a = ((((adc_H << 14) - (c.H4 << 20) - Math.imul(c.H5, v)) | 0) + 16384) >> 15;
  const b =
    (Math.imul(
      ((Math.imul(Math.imul(v, c.H6) >> 10, ((Math.imul(v, c.H3) >> 11) + 32768) | 0) >> 10) + 2097152) | 0,
      c.H2,
    ) +
      8192) >>
    14;
  v = Math.imul(a, b);
  v = (v - (Math.imul(Math.imul(v >> 15, v >> 15) >> 7, c.H1) >> 4)) | 0;
  v = Math.min(Math.max(v, 0), 419430400);
  return v >>> 12;
}

export interface Bme280Measurement {
  temperature_c: number;
  pressure_hpa: number;
  humidity_pct: number;
}

/** Compensate a raw block into physical units. */
export function compensate(raw: Bme280Raw, c: Bme280Trimming): Bme280Measurement {
  const { t_01c, t_fine } = compensateTemperature(raw.adc_T, c);
  return {
    temperature_c: t_01c / 100,
    pressure_hpa: compensatePressure(raw.adc_P, t_fine, c) / 256 / 100,
    humidity_pct: compensateHumidity(raw.adc_H, t_fine, c) / 1024,
  };
}
