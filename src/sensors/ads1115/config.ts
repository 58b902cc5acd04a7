/**
 * ADS1115 register map (TI SBAS444, §9.6) and the pure config/voltage codecs.
 *
 *   pointer 0x00 conversion: 16-bit two's complement, big-endian
 *   pointer 0x01 config, big-endian:
 *     15 OS       write 1: start a single conversion; read 0: converting, 1: idle
 *     14:12 MUX   000 AIN0-AIN1 001 AIN0-AIN3 010 AIN1-AIN3 011 AIN2-AIN3 100..111 AINx-GND
 *     11:9 PGA    full scale ±6.144 4.096 2.048 1.024 0.512 0.256 V
 *     8 MODE      1 single-shot (power-down after the conversion)
 *     7:5 DR      8 16 32 64 128 250 475 860 samples/s
 *     4:0 COMP_*  comparator; 0b00011 disables it (ALERT/RDY high-Z)
 */

export const REG_CONVERSION = 0x00;
export const REG_CONFIG = 0x01;
export const OS = 0x8000;
export const MODE_SINGLE = 0x0100;
export const COMP_DISABLE = 0x0003;

export const INPUTS = [
  "ain0-ain1",
  "ain0-ain3",
  "ain1-ain3",
  "ain2-ain3",
  "ain0",
  "ain1",
  "ain2",
  "ain3",
] as const;
export type Input = (typeof INPUTS)[number];

export const FULL_SCALE_V = [6.144, 4.096, 2.048, 1.024, 0.512, 0.256] as const;
export type FullScale = (typeof FULL_SCALE_V)[number];

export const DATA_RATES_SPS = [8, 16, 32, 64, 128, 250, 475, 860] as const;
export type DataRate = (typeof DATA_RATES_SPS)[number];

/** The config word that starts one single-shot conversion of `input`. */
export function configWord(input: Input, fullScale: FullScale, rate: DataRate): number {
  const mux = INPUTS.indexOf(input);
  const pga = FULL_SCALE_V.indexOf(fullScale);
  const dr = DATA_RATES_SPS.indexOf(rate);
  if (mux < 0 || pga < 0 || dr < 0)
    throw new RangeError(`bad ADS1115 setting ${input} ${fullScale} V ${rate} SPS`);
  return OS | (mux << 12) | (pga << 9) | MODE_SINGLE | (dr << 5) | COMP_DISABLE;
}

/** Volts for a raw conversion: raw × FS / 32768 (one LSB = FS / 2^15). */
export function volts(raw: number, fullScale: FullScale): number {
  return (raw * fullScale) / 32768;
}

/** Signed 16-bit from the two big-endian bytes of the conversion register. */
export function rawFromBytes(msb: number, lsb: number): number {
  return (((msb << 8) | lsb) << 16) >> 16;
}

/** At or beyond full scale the ADC clips to 0x7FFF / 0x8000: the voltage is not known. */
export function isClipped(raw: number): boolean {
  return raw === 0x7fff || raw === -0x8000;
}

/** Conversion time in ms: one period of the data rate, +10 % for the internal oscillator's tolerance. */
export function conversionMs(rate: DataRate): number {
  return Math.ceil((1000 / rate) * 1.1);
}

/** The value's field name: "ain0" → "ain0_v", "ain0-ain1" → "ain0_ain1_v". */
export function fieldName(input: Input): string {
  return `${input.replace("-", "_")}_v`;
}
