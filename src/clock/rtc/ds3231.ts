/**
 * Ds3231 is the direct-I2C driver: register access per the codec in codec.ts over a bus it is
 * given (it never opens or closes one). The OSF rule: a time read while OSF is set is reported
 * invalid and must never become an anchor; OSF is cleared only right after a good time has been
 * written.
 */
import type { I2cBus } from "../../hal/i2c/types.ts";
import {
  DS3231_ADDRESS,
  decodeAging,
  decodeTemperature,
  decodeTime,
  encodeTime,
  REG_AGING,
  REG_SECONDS,
  REG_STATUS,
  REG_TEMP_MSB,
  STATUS_OSF,
} from "./codec.ts";
import type { Rtc, RtcReading } from "./types.ts";

export interface Ds3231Status {
  osf: boolean;
  statusRegister: number;
}

export class Ds3231 {
  constructor(
    readonly bus: I2cBus,
    readonly address = DS3231_ADDRESS,
  ) {}

  private async readRegisters(start: number, length: number): Promise<Uint8Array> {
    return this.bus.transfer(this.address, Uint8Array.of(start), length);
  }

  private async writeRegisters(start: number, data: Uint8Array): Promise<void> {
    await this.bus.transfer(this.address, Uint8Array.of(start, ...data), 0);
  }

  /** Time registers 00h-06h as UTC ms (read in one transaction so they are coherent). */
  async readTime(): Promise<number> {
    return decodeTime(await this.readRegisters(REG_SECONDS, 7));
  }

  async readStatus(): Promise<Ds3231Status> {
    const [status] = await this.readRegisters(REG_STATUS, 1);
    return { osf: (status! & STATUS_OSF) !== 0, statusRegister: status! };
  }

  async readTemperatureC(): Promise<number> {
    const [msb, lsb] = await this.readRegisters(REG_TEMP_MSB, 2);
    return decodeTemperature(msb!, lsb!);
  }

  async readAgingOffset(): Promise<number> {
    const [reg] = await this.readRegisters(REG_AGING, 1);
    return decodeAging(reg!);
  }

  /** Write the time (24-hour mode), then clear OSF: the time is good from now on. */
  async writeTime(wallMs: number): Promise<void> {
    const regs = encodeTime(wallMs, false);
    await this.writeRegisters(REG_SECONDS, regs);
    const { statusRegister } = await this.readStatus();
    if (statusRegister & STATUS_OSF)
      await this.writeRegisters(REG_STATUS, Uint8Array.of(statusRegister & ~STATUS_OSF));
  }

  /** Everything the clock and the CLI want in one go. */
  async read(): Promise<RtcReading> {
    const { osf } = await this.readStatus();
    const temperatureC = await this.readTemperatureC();
    let wallMs: number | undefined;
    let problem: string | undefined;
    try {
      wallMs = await this.readTime();
    } catch (error) {
      problem = (error as Error).message;
    }
    if (osf)
      problem = "oscillator-stop flag (OSF) is set: the RTC stopped (battery?) and its time is invalid";
    return {
      wallMs,
      valid: !osf && wallMs !== undefined,
      osf,
      temperatureC,
      ...(problem ? { problem } : {}),
    };
  }
}

/** The direct path as an Rtc. `close` closes the bus only when `ownsBus` (it was opened for us). */
export function ds3231Rtc(
  bus: I2cBus,
  {
    address = DS3231_ADDRESS,
    busNumber,
    close,
  }: { address?: number; busNumber: number; close?: () => Promise<void> },
): Rtc {
  const chip = new Ds3231(bus, address);
  return {
    path: "i2c",
    description: `DS3231 at 0x${address.toString(16)} on I2C bus ${busNumber}`,
    read: () => chip.read(),
    write: (wallMs) => chip.writeTime(wallMs),
    agingOffset: () => chip.readAgingOffset(),
    close: async () => {
      await close?.();
    },
  };
}
