import type { I2cDeviceModel } from "../types.ts";

/**
 * RegisterFileModel is the common shape of byte-register chips (BME280, DS3231, EEPROM-like
 * maps): the first written byte sets the register pointer, further written bytes are stored from
 * there, reads return bytes from the pointer; both auto-increment. Subclasses hook onWrite to
 * react (start a conversion, reset) and onRead to compute registers on demand.
 */
export class RegisterFileModel implements I2cDeviceModel {
  readonly registers = new Uint8Array(256);
  pointer = 0;

  constructor(initial: Record<number, number> = {}) {
    for (const [reg, value] of Object.entries(initial)) this.registers[Number(reg)] = value;
  }

  transfer(write: Uint8Array, readLength: number): Uint8Array {
    if (write.length > 0) {
      this.pointer = write[0]!;
      for (let i = 1; i < write.length; i++) {
        const reg = (this.pointer + i - 1) & 0xff;
        this.registers[reg] = write[i]!;
        this.onWrite(reg, write[i]!);
      }
    }
    const out = new Uint8Array(readLength);
    for (let i = 0; i < readLength; i++) {
      const reg = (this.pointer + i) & 0xff;
      out[i] = this.onRead(reg);
    }
    return out;
  }

  protected onWrite(_register: number, _value: number): void {}

  protected onRead(register: number): number {
    return this.registers[register]!;
  }
}
