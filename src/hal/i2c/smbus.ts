/**
 * SMBus-style helpers over any I2cBus, in the shapes users know from the i2c-bus package's
 * promisified bus (readByte, writeI2cBlock, i2cRead, scan …). They are built on transfer(), so
 * they work the same over /dev/i2c-N and over a ModelBus. SMBus words are little-endian (LSB
 * first on the wire), as in the SMBus spec; chips with big-endian registers read blocks instead.
 */
import { classifyI2cError } from "./errors.ts";
import { type ScanResult, scanBus } from "./scan.ts";
import type { I2cBus } from "./types.ts";

/** I²C "block" helpers move at most 32 bytes, like the SMBus/i2c-bus limit. */
export const I2C_BLOCK_MAX = 32;

const busPath = (bus: I2cBus) => (bus as { path?: string }).path ?? "i2c";

function checkByte(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xff)
    throw new RangeError(`${name} ${value} is not a byte`);
}

function checkBlock(length: number): void {
  if (!Number.isInteger(length) || length < 0 || length > I2C_BLOCK_MAX)
    throw new RangeError(`block length ${length} is not 0..${I2C_BLOCK_MAX}`);
}

/**
 * SmbusDevice is one chip on a bus: register reads and writes bound to its address. Failures are
 * typed (I2cNack, I2cAddressBusy) whichever bus is underneath. It does not own the bus.
 */
export class SmbusDevice {
  constructor(
    readonly bus: I2cBus,
    readonly address: number,
  ) {}

  /** One transaction (write then read with a repeated start), errors typed. */
  async transfer(write: Uint8Array, readLength: number): Promise<Uint8Array> {
    try {
      const data = await this.bus.transfer(this.address, write, readLength);
      if (data.length !== readLength)
        throw new RangeError(`read ${data.length} bytes from ${this.address}, expected ${readLength}`);
      return data;
    } catch (error) {
      throw classifyI2cError(error, busPath(this.bus), this.address);
    }
  }

  async readByte(command: number): Promise<number> {
    checkByte("command", command);
    return (await this.transfer(Uint8Array.of(command), 1))[0]!;
  }

  async readWord(command: number): Promise<number> {
    checkByte("command", command);
    const b = await this.transfer(Uint8Array.of(command), 2);
    return b[0]! | (b[1]! << 8);
  }

  async writeByte(command: number, byte: number): Promise<void> {
    checkByte("command", command);
    checkByte("value", byte);
    await this.transfer(Uint8Array.of(command, byte), 0);
  }

  async writeWord(command: number, word: number): Promise<void> {
    checkByte("command", command);
    if (!Number.isInteger(word) || word < 0 || word > 0xffff)
      throw new RangeError(`word ${word} is not 16-bit`);
    await this.transfer(Uint8Array.of(command, word & 0xff, word >> 8), 0);
  }

  /** Read `length` bytes starting at register `command` (auto-increment chips). */
  async readBlock(command: number, length: number): Promise<Uint8Array> {
    checkByte("command", command);
    checkBlock(length);
    return this.transfer(Uint8Array.of(command), length);
  }

  async writeBlock(command: number, bytes: Uint8Array): Promise<void> {
    checkByte("command", command);
    checkBlock(bytes.length);
    const out = new Uint8Array(bytes.length + 1);
    out[0] = command;
    out.set(bytes, 1);
    await this.transfer(out, 0);
  }

  /** Plain read without a register pointer. */
  read(length: number): Promise<Uint8Array> {
    return this.transfer(new Uint8Array(0), length);
  }

  /** Plain write (command bytes for chips like the SHT3x). */
  async write(bytes: Uint8Array): Promise<void> {
    await this.transfer(bytes, 0);
  }
}

/**
 * PromisifiedBus: i2c-bus's promise API over any I2cBus. Buffers are Uint8Arrays (a Node Buffer
 * is one). Results keep i2c-bus's shapes ({ bytesRead, buffer }).
 */
export class PromisifiedBus {
  constructor(readonly bus: I2cBus & { close?: () => Promise<void> }) {}

  private device(address: number): SmbusDevice {
    return new SmbusDevice(this.bus, address);
  }

  readByte(address: number, command: number): Promise<number> {
    return this.device(address).readByte(command);
  }

  readWord(address: number, command: number): Promise<number> {
    return this.device(address).readWord(command);
  }

  writeByte(address: number, command: number, byte: number): Promise<void> {
    return this.device(address).writeByte(command, byte);
  }

  writeWord(address: number, command: number, word: number): Promise<void> {
    return this.device(address).writeWord(command, word);
  }

  async receiveByte(address: number): Promise<number> {
    return (await this.device(address).read(1))[0]!;
  }

  sendByte(address: number, byte: number): Promise<void> {
    checkByte("value", byte);
    return this.device(address).write(Uint8Array.of(byte));
  }

  async readI2cBlock(
    address: number,
    command: number,
    length: number,
    buffer: Uint8Array,
  ): Promise<{ bytesRead: number; buffer: Uint8Array }> {
    if (buffer.length < length)
      throw new RangeError(`buffer holds ${buffer.length} bytes, ${length} requested`);
    const data = await this.device(address).readBlock(command, length);
    buffer.set(data);
    return { bytesRead: data.length, buffer };
  }

  async writeI2cBlock(
    address: number,
    command: number,
    length: number,
    buffer: Uint8Array,
  ): Promise<{ bytesWritten: number; buffer: Uint8Array }> {
    await this.device(address).writeBlock(command, buffer.subarray(0, length));
    return { bytesWritten: length, buffer };
  }

  async i2cRead(
    address: number,
    length: number,
    buffer: Uint8Array,
  ): Promise<{ bytesRead: number; buffer: Uint8Array }> {
    if (buffer.length < length)
      throw new RangeError(`buffer holds ${buffer.length} bytes, ${length} requested`);
    const data = await this.device(address).read(length);
    buffer.set(data);
    return { bytesRead: data.length, buffer };
  }

  async i2cWrite(
    address: number,
    length: number,
    buffer: Uint8Array,
  ): Promise<{ bytesWritten: number; buffer: Uint8Array }> {
    await this.device(address).write(buffer.subarray(0, length));
    return { bytesWritten: length, buffer };
  }

  /** Addresses that answered, as i2c-bus's scan() returns them (driver-owned ones excluded). */
  async scan(first = 0x03, last = 0x77): Promise<number[]> {
    const result = await scanBus(this.bus, first, last);
    return [...result].filter(([, state]) => state === "found").map(([address]) => address);
  }

  /** Full i2cdetect result, including driver-owned ("busy") addresses. */
  detect(first?: number, last?: number): Promise<ScanResult> {
    return scanBus(this.bus, first, last);
  }

  async close(): Promise<void> {
    await this.bus.close?.();
  }
}
