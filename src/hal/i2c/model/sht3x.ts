/**
 * Sht3xModel: an SHT3x at the command level. A single-shot command (0x24xx) starts a
 * measurement; reads NACK (ENXIO) for `busyReads` attempts, then return the 6-byte read-out with
 * CRCs (computed here independently of the driver: poly 0x31, init 0xFF). `corruptCrc` flips the
 * temperature CRC. Unknown commands NACK, as the chip does.
 */
import { Errno, SyscallError } from "../../libc/index.ts";
import type { I2cDeviceModel } from "../types.ts";

function crc(a: number, b: number): number {
  let c = 0xff;
  for (const byte of [a, b]) {
    c ^= byte;
    for (let i = 0; i < 8; i++) c = c & 0x80 ? ((c << 1) ^ 0x31) & 0xff : (c << 1) & 0xff;
  }
  return c;
}

export class Sht3xModel implements I2cDeviceModel {
  rawT: number;
  rawRH: number;
  busyReads = 0;
  corruptCrc = false;
  commands: number[] = [];
  private pending: number | undefined;
  private busy = 0;

  constructor(options: { rawT: number; rawRH: number }) {
    this.rawT = options.rawT;
    this.rawRH = options.rawRH;
  }

  transfer(write: Uint8Array, readLength: number): Uint8Array {
    if (write.length === 2) {
      const command = (write[0]! << 8) | write[1]!;
      this.commands.push(command);
      if (command === 0x2400 || command === 0x240b || command === 0x2416) {
        this.pending = command;
        this.busy = this.busyReads;
      } else if (command !== 0x30a2) {
        throw new SyscallError("ioctl(I2C_RDWR)", Errno.EREMOTEIO, "/dev/i2c-1", "unknown command");
      }
    } else if (write.length !== 0) {
      throw new SyscallError("ioctl(I2C_RDWR)", Errno.EREMOTEIO, "/dev/i2c-1", "bad command length");
    }
    if (readLength === 0) return new Uint8Array(0);
    if (this.pending === undefined || this.busy > 0) {
      this.busy--;
      throw new SyscallError("ioctl(I2C_RDWR)", Errno.ENXIO, "/dev/i2c-1", "no data ready");
    }
    this.pending = undefined;
    const t = [this.rawT >> 8, this.rawT & 0xff];
    const h = [this.rawRH >> 8, this.rawRH & 0xff];
    const out = [
      t[0]!,
      t[1]!,
      crc(t[0]!, t[1]!) ^ (this.corruptCrc ? 0x01 : 0),
      h[0]!,
      h[1]!,
      crc(h[0]!, h[1]!),
    ];
    return Uint8Array.from(out.slice(0, readLength));
  }
}
