/**
 * Ads1115Model: the ADS1115's pointer/config/conversion registers (16-bit, big-endian). Writing
 * config with OS=1 in single-shot mode starts a conversion of the selected MUX input: config reads
 * show OS=0 for `conversionReads` reads (0: done by the first read), then OS=1 and the conversion register holds the input's
 * voltage quantised with the selected PGA, clipped to 0x7FFF/0x8000. `stuck` never finishes.
 */
import type { I2cDeviceModel } from "../types.ts";

const FS = [6.144, 4.096, 2.048, 1.024, 0.512, 0.256, 0.256, 0.256];

export class Ads1115Model implements I2cDeviceModel {
  /** Voltage per MUX setting 0..7 (differential pairs then AINx-GND). */
  volts: number[] = [0, 0, 0, 0, 0, 0, 0, 0];
  conversionReads = 0;
  stuck = false;
  config = 0x8583; // power-on default
  conversion = 0;
  conversions = 0;
  private pointer = 0;
  private busy = 0;

  transfer(write: Uint8Array, readLength: number): Uint8Array {
    if (write.length > 0) this.pointer = write[0]! & 0x03;
    if (write.length >= 3 && this.pointer === 1) this.writeConfig((write[1]! << 8) | write[2]!);
    const out = new Uint8Array(readLength);
    if (readLength > 0) {
      let word = this.pointer === 0 ? this.conversion & 0xffff : this.config;
      if (this.pointer === 1) {
        const converting = this.stuck || this.busy > 0;
        if (this.busy > 0 && --this.busy === 0 && !this.stuck) this.finish();
        word = converting ? word & 0x7fff : word | 0x8000;
      }
      out[0] = word >> 8;
      if (readLength > 1) out[1] = word & 0xff;
    }
    return out;
  }

  private writeConfig(word: number): void {
    this.config = word & 0x7fff;
    if (word & 0x8000 && word & 0x0100) {
      this.busy = this.conversionReads;
      if (this.busy === 0 && !this.stuck) this.finish();
    }
  }

  private finish(): void {
    this.conversions++;
    const mux = (this.config >> 12) & 0x07;
    const fs = FS[(this.config >> 9) & 0x07]!;
    const raw = Math.round((this.volts[mux]! / fs) * 32768);
    this.conversion = Math.max(-32768, Math.min(32767, raw));
  }
}
