/**
 * Ds3231Model is a register-level DS3231 for tests and demos (periph's i2ctest idea): the same
 * register map as codec.ts, a register pointer set by the first written byte and auto-incremented
 * by every read and write (wrapping after 12h to 00h), time that advances from an injected clock,
 * the century bit toggling at 2099→2100, OSF set by batteryLoss(), 12-hour mode kept as written,
 * a settable temperature and aging offset, and `ownedByKernel` to answer EBUSY like an address
 * bound to rtc-ds1307.
 */
import type { I2cDeviceModel } from "../../hal/i2c/types.ts";
import { Errno, SyscallError } from "../../hal/libc/index.ts";
import {
  decodeTime,
  encodeTemperature,
  encodeTime,
  HOURS_12H,
  MIN_MS,
  REG_AGING,
  REG_CONTROL,
  REG_LAST,
  REG_SECONDS,
  REG_STATUS,
  REG_TEMP_MSB,
  STATUS_OSF,
} from "./codec.ts";

export interface Ds3231ModelOptions {
  /** The host clock that makes the model's time advance, ms. */
  nowMs: () => number;
  /** The RTC's time at construction (default 2000-01-01 00:00:00 with OSF set, as after first power-up). */
  timeMs?: number;
  osf?: boolean;
  twelveHour?: boolean;
  temperatureC?: number;
  agingOffset?: number;
  ownedByKernel?: boolean;
}

export class Ds3231Model implements I2cDeviceModel {
  ownedByKernel: boolean;
  private readonly regs = new Uint8Array(REG_LAST + 1);
  private pointer = 0;
  private baseRtcMs: number;
  private baseHostMs: number;
  private twelveHour: boolean;

  constructor(private readonly options: Ds3231ModelOptions) {
    this.ownedByKernel = options.ownedByKernel ?? false;
    this.twelveHour = options.twelveHour ?? false;
    this.baseRtcMs = Math.floor((options.timeMs ?? MIN_MS) / 1000) * 1000;
    this.baseHostMs = options.nowMs();
    this.regs[REG_CONTROL] = 0x1c;
    this.regs[REG_STATUS] = (options.osf ?? options.timeMs === undefined) ? STATUS_OSF : 0;
    this.temperatureC = options.temperatureC ?? 25;
    this.agingOffset = options.agingOffset ?? 0;
  }

  /** The time the chip holds now, ms (whole seconds). */
  timeMs(): number {
    const elapsed = this.options.nowMs() - this.baseHostMs;
    return this.baseRtcMs + Math.floor(elapsed / 1000) * 1000;
  }

  get osf(): boolean {
    return (this.regs[REG_STATUS]! & STATUS_OSF) !== 0;
  }

  set temperatureC(t: number) {
    const [msb, lsb] = encodeTemperature(t);
    this.regs[REG_TEMP_MSB] = msb;
    this.regs[REG_TEMP_MSB + 1] = lsb;
  }

  set agingOffset(steps: number) {
    this.regs[REG_AGING] = steps & 0xff;
  }

  /** The backup battery was missing while power was off: time resets and OSF is set. */
  batteryLoss(): void {
    this.baseRtcMs = MIN_MS;
    this.baseHostMs = this.options.nowMs();
    this.regs[REG_STATUS] = this.regs[REG_STATUS]! | STATUS_OSF;
  }

  /** Set the time directly (as if set long ago), without touching OSF. */
  setTime(wallMs: number): void {
    this.baseRtcMs = Math.floor(wallMs / 1000) * 1000;
    this.baseHostMs = this.options.nowMs();
  }

  transfer(write: Uint8Array, readLength: number): Uint8Array {
    if (this.ownedByKernel)
      throw new SyscallError(
        "ioctl(I2C_RDWR)",
        Errno.EBUSY,
        "/dev/i2c-1",
        "a kernel driver owns this address",
      );
    // Time registers are latched from the running clock at the start of each transaction.
    this.regs.set(encodeTime(this.timeMs(), this.twelveHour), REG_SECONDS);
    let timeWritten = false;
    if (write.length > 0) {
      this.pointer = write[0]! % (REG_LAST + 1);
      for (const byte of write.subarray(1)) {
        if (this.pointer <= 0x06) timeWritten = true;
        if (this.pointer === REG_STATUS) {
          // OSF can only be cleared by writing 0, never set by software; BSY is read-only.
          this.regs[REG_STATUS] = (this.regs[REG_STATUS]! & byte & STATUS_OSF) | (byte & 0x0b);
        } else if (this.pointer !== REG_TEMP_MSB && this.pointer !== REG_TEMP_MSB + 1) {
          this.regs[this.pointer] = byte;
        }
        this.pointer = (this.pointer + 1) % (REG_LAST + 1);
      }
    }
    if (timeWritten) {
      // Writing the time restarts the countdown chain: the new second starts now.
      this.twelveHour = (this.regs[0x02]! & HOURS_12H) !== 0;
      this.baseRtcMs = decodeTime(this.regs.subarray(0, 7));
      this.baseHostMs = this.options.nowMs();
    }
    const out = new Uint8Array(readLength);
    for (let i = 0; i < readLength; i++) {
      out[i] = this.regs[this.pointer]!;
      this.pointer = (this.pointer + 1) % (REG_LAST + 1);
    }
    return out;
  }
}
