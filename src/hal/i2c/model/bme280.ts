/**
 * Bme280Model: a register-level BME280 (datasheet §5.3 memory map) for tests and demos.
 *
 *   0xD0 id (0x60)   0xE0 reset (write 0xB6)   0x88–0xA1, 0xE1–0xE7 trimming NVM
 *   0xF2 ctrl_hum (osrs_h, latched by the next ctrl_meas write)
 *   0xF3 status (bit 3 measuring, bit 0 im_update)
 *   0xF4 ctrl_meas (osrs_t[7:5] osrs_p[4:2] mode[1:0]: 00 sleep, 01/10 forced, 11 normal)
 *   0xF7–0xFE press[19:0] temp[19:0] hum[15:0], reset value 0x80000/0x80000/0x8000
 *
 * A forced-mode write keeps status.measuring set for `conversionReads` status reads, then
 * latches the configured raw ADC values (a channel with oversampling 0 reads as skipped) and
 * returns to sleep. `stuck` keeps it measuring forever.
 */
import type { Bme280Trimming } from "../../../sensors/bme280/compensation.ts";
import { RegisterFileModel } from "./register-file.ts";

/** The trimming parameters the driver decodes; the model lays them into NVM (the inverse). */
export type Bme280Calibration = Bme280Trimming;

/** Lay trimming parameters into the NVM bytes, as datasheet table 16 places them. */
export function writeBme280Calibration(regs: Uint8Array, c: Bme280Calibration): void {
  const put16 = (at: number, v: number) => {
    regs[at] = v & 0xff;
    regs[at + 1] = (v >> 8) & 0xff;
  };
  [c.T1, c.T2, c.T3, c.P1, c.P2, c.P3, c.P4, c.P5, c.P6, c.P7, c.P8, c.P9].forEach((v, i) => {
    put16(0x88 + 2 * i, v);
  });
  regs[0xa1] = c.H1 & 0xff;
  put16(0xe1, c.H2);
  regs[0xe3] = c.H3 & 0xff;
  regs[0xe4] = (c.H4 >> 4) & 0xff;
  regs[0xe5] = ((c.H5 & 0x0f) << 4) | (c.H4 & 0x0f);
  regs[0xe6] = (c.H5 >> 4) & 0xff;
  regs[0xe7] = c.H6 & 0xff;
}

export interface Bme280ModelOptions {
  calibration: Bme280Calibration;
  adc_T: number;
  adc_P: number;
  adc_H: number;
  chipId?: number;
  conversionReads?: number;
}

export class Bme280Model extends RegisterFileModel {
  adc_T: number;
  adc_P: number;
  adc_H: number;
  conversionReads: number;
  stuck = false;
  measurements = 0;
  private measuringReads = 0;

  constructor(options: Bme280ModelOptions) {
    super();
    this.registers[0xd0] = options.chipId ?? 0x60;
    writeBme280Calibration(this.registers, options.calibration);
    this.adc_T = options.adc_T;
    this.adc_P = options.adc_P;
    this.adc_H = options.adc_H;
    this.conversionReads = options.conversionReads ?? 1;
    this.reset();
  }

  private reset(): void {
    this.registers.fill(0, 0xf2, 0xf6);
    this.registers.set([0x80, 0, 0, 0x80, 0, 0, 0x80, 0], 0xf7);
    this.measuringReads = 0;
  }

  protected override onWrite(register: number, value: number): void {
    if (register === 0xe0 && value === 0xb6) this.reset();
    if (register !== 0xf4) return;
    const mode = value & 0x03;
    if (mode === 0x01 || mode === 0x02) {
      this.measuringReads = this.conversionReads;
      if (!this.stuck) this.latch(value);
    }
  }

  protected override onRead(register: number): number {
    if (register === 0xf3) {
      const measuring = this.stuck || this.measuringReads > 0;
      if (this.measuringReads > 0) this.measuringReads--;
      if (!measuring) this.registers[0xf4]! &= ~0x03; // back to sleep
      return measuring ? 0x08 : 0x00;
    }
    return this.registers[register]!;
  }

  private latch(ctrlMeas: number): void {
    this.measurements++;
    const osrsT = ctrlMeas >> 5;
    const osrsP = (ctrlMeas >> 2) & 0x07;
    const osrsH = this.registers[0xf2]! & 0x07;
    const t = osrsT === 0 ? 0x80000 : this.adc_T;
    const p = osrsP === 0 ? 0x80000 : this.adc_P;
    const h = osrsH === 0 ? 0x8000 : this.adc_H;
    this.registers.set(
      [
        p >> 12,
        (p >> 4) & 0xff,
        (p & 0x0f) << 4,
        t >> 12,
        (t >> 4) & 0xff,
        (t & 0x0f) << 4,
        h >> 8,
        h & 0xff,
      ],
      0xf7,
    );
  }
}
