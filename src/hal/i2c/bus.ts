/**
 * LinuxI2cBus is an I2cBus over /dev/i2c-N (i2c-dev). Every transfer is ONE I2C_RDWR ioctl: the
 * write message and the read message go out with a repeated start between them, so no other
 * master can slip in between setting a register pointer and reading it.
 *
 * Blocking: the ioctl runs synchronously on the calling thread. An I²C transaction is bounded
 * (at 100 kHz a 32-byte read takes ~3 ms; the adapter's own timeout, 1 s on bcm2835, caps a stuck
 * bus), so the event loop stalls for at most one transaction per call, never longer. Drivers
 * issue a handful of short transfers per reading.
 *
 * scan() probes like i2cdetect: I2C_SLAVE first (EBUSY means a kernel driver owns the address:
 * "UU"), then an SMBus quick write or read-byte through I2C_SMBUS.
 */
import { join } from "node:path";
import * as libc from "../libc/index.ts";
import { Errno, SyscallError } from "../libc/index.ts";
import { classifyI2cError, hex2, I2cAdapterMissing, I2cIoctlsUnsupported, I2cNotAdapter } from "./errors.ts";
import {
  type ProbeMode,
  type ProbeResult,
  type ProbingBus,
  probeOutcome,
  type ScanResult,
  scanBus,
} from "./scan.ts";
import { PromisifiedBus } from "./smbus.ts";
import type { I2cBus } from "./types.ts";
import {
  encodeI2cMsgs,
  encodeRdwrData,
  encodeSmbusData,
  I2C_FUNC_I2C,
  I2C_FUNC_SMBUS_QUICK,
  I2C_FUNCS,
  I2C_M_RD,
  I2C_RDWR,
  I2C_RDWR_MAX_LEN,
  I2C_SLAVE,
  I2C_SMBUS,
  I2C_SMBUS_BYTE,
  I2C_SMBUS_DATA_SIZE,
  I2C_SMBUS_QUICK,
  I2C_SMBUS_READ,
  I2C_SMBUS_WRITE,
} from "./uapi.ts";

export interface OpenI2cOptions {
  /** Filesystem root that holds dev/i2c-N ("/" on a device; a temp tree in tests). */
  root?: string;
}

/** The path of bus N under root, as the kernel names it. */
export function i2cBusPath(busNumber: number, root = "/"): string {
  return join(root, "dev", `i2c-${busNumber}`);
}

/** Open /dev/i2c-N and check it is an adapter that can do plain I²C (I2C_FUNC_I2C). */
export async function openI2cBus(busNumber: number, options: OpenI2cOptions = {}): Promise<LinuxI2cBus> {
  if (!Number.isInteger(busNumber) || busNumber < 0) throw new RangeError(`bad I2C bus number ${busNumber}`);
  const path = i2cBusPath(busNumber, options.root);
  let fd: number;
  try {
    fd = libc.open(path, libc.O_RDWR);
  } catch (error) {
    if (error instanceof SyscallError && error.errno === Errno.ENOENT) throw new I2cAdapterMissing(path);
    throw error;
  }
  try {
    const funcs = new BigUint64Array(new ArrayBuffer(8));
    try {
      libc.ioctl(fd, I2C_FUNCS, new Uint8Array(funcs.buffer), path, "ioctl(I2C_FUNCS)");
    } catch (error) {
      if (error instanceof SyscallError && (error.errno === Errno.ENOTTY || error.errno === Errno.EINVAL))
        throw new I2cNotAdapter(path, error.errno, error.syscall);
      if (error instanceof SyscallError && error.errno === Errno.ENOSYS)
        throw new I2cIoctlsUnsupported(path, error.syscall);
      throw error;
    }
    const functionality = Number(funcs[0]! & 0xffffffffn);
    if ((functionality & I2C_FUNC_I2C) === 0)
      throw new SyscallError(
        "ioctl(I2C_FUNCS)",
        Errno.EOPNOTSUPP,
        path,
        "this adapter only speaks SMBus; fieldrelay needs plain I2C transfers (I2C_RDWR)",
      );
    return new LinuxI2cBus(path, fd, functionality);
  } catch (error) {
    libc.close(fd);
    throw error;
  }
}

export class LinuxI2cBus implements I2cBus, ProbingBus {
  private closed = false;

  constructor(
    readonly path: string,
    private readonly fd: number,
    /** The I2C_FUNCS bit set the adapter reported. */
    readonly functionality: number,
  ) {}

  async transfer(address: number, write: Uint8Array, readLength: number): Promise<Uint8Array> {
    return this.transferSync(address, write, readLength);
  }

  /** The transfer, synchronously: one I2C_RDWR ioctl carrying the write and the read message. */
  transferSync(address: number, write: Uint8Array, readLength: number): Uint8Array {
    this.checkOpen();
    if (!Number.isInteger(address) || address < 0 || address > 0x7f)
      throw new RangeError(`I2C address ${address} is not a 7-bit address`);
    if (write.length > I2C_RDWR_MAX_LEN || readLength > I2C_RDWR_MAX_LEN || readLength < 0)
      throw new RangeError(`an I2C message carries at most ${I2C_RDWR_MAX_LEN} bytes`);
    // Buffers whose address goes into a struct are allocated on their own ArrayBuffer so they
    // cannot move, and stay referenced (locals below) until the ioctl returns.
    const writeBuf = new Uint8Array(new ArrayBuffer(Math.max(write.length, 1)));
    writeBuf.set(write);
    const readBuf = new Uint8Array(new ArrayBuffer(Math.max(readLength, 1)));
    const msgs = [];
    if (write.length > 0 || readLength === 0)
      msgs.push({ addr: address, flags: 0, len: write.length, buf: BigInt(libc.addressOf(writeBuf)) });
    if (readLength > 0)
      msgs.push({ addr: address, flags: I2C_M_RD, len: readLength, buf: BigInt(libc.addressOf(readBuf)) });
    const msgBytes = encodeI2cMsgs(msgs);
    const rdwr = encodeRdwrData(BigInt(libc.addressOf(msgBytes)), msgs.length);
    try {
      libc.ioctl(this.fd, I2C_RDWR, rdwr, this.path, "ioctl(I2C_RDWR)");
    } catch (error) {
      throw classifyI2cError(error, this.path, address);
    }
    keepAlive(writeBuf, msgBytes);
    return readBuf.slice(0, readLength);
  }

  /** Probe one address as i2cdetect does (see the module comment). */
  async probe(address: number, mode: ProbeMode): Promise<ProbeResult> {
    this.checkOpen();
    try {
      libc.ioctl(this.fd, I2C_SLAVE, address, this.path, `ioctl(I2C_SLAVE, ${hex2(address)})`);
      const useRead = mode === "read" || (this.functionality & I2C_FUNC_SMBUS_QUICK) === 0;
      const data = new Uint8Array(new ArrayBuffer(I2C_SMBUS_DATA_SIZE));
      const args = useRead
        ? encodeSmbusData(I2C_SMBUS_READ, 0, I2C_SMBUS_BYTE, BigInt(libc.addressOf(data)))
        : encodeSmbusData(I2C_SMBUS_WRITE, 0, I2C_SMBUS_QUICK, 0n);
      libc.ioctl(this.fd, I2C_SMBUS, args, this.path, "ioctl(I2C_SMBUS)");
      keepAlive(data);
      return "found";
    } catch (error) {
      return probeOutcome(error);
    }
  }

  /** i2cdetect over the whole bus (0x08–0x77). */
  scan(): Promise<ScanResult> {
    return scanBus(this);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
  }

  private checkOpen(): void {
    if (this.closed) throw new SyscallError("ioctl", Errno.EBADF, this.path, "the bus was closed");
  }
}

/** Keeps buffers reachable up to this point, so the GC cannot free memory a struct points at. */
function keepAlive(..._buffers: Uint8Array[]): void {}

/** i2c-bus's openPromisified(): the SMBus-style promise API over /dev/i2c-N. close() closes the bus. */
export async function openPromisified(
  busNumber: number,
  options: OpenI2cOptions = {},
): Promise<PromisifiedBus> {
  return new PromisifiedBus(await openI2cBus(busNumber, options));
}
