/**
 * The i2c-dev uAPI (linux/i2c.h, linux/i2c-dev.h) as numbers and byte layouts. Pure encoders:
 * no syscalls here, so test/unit/hal-layout.test.ts can compare every byte with what gcc makes
 * of the kernel headers. Layouts are the same on x86_64 and aarch64 (LP64, natural alignment).
 *
 *   struct i2c_msg               16 bytes: addr u16 @0, flags u16 @2, len u16 @4, buf ptr @8
 *   struct i2c_rdwr_ioctl_data   16 bytes: msgs ptr @0, nmsgs u32 @8
 *   struct i2c_smbus_ioctl_data  16 bytes: read_write u8 @0, command u8 @1, size u32 @4, data ptr @8
 *   union i2c_smbus_data         34 bytes: byte u8 | word u16 | block[34] (block[0] = length)
 */

export const I2C_SLAVE = 0x0703;
export const I2C_SLAVE_FORCE = 0x0706;
export const I2C_FUNCS = 0x0705;
export const I2C_RDWR = 0x0707;
export const I2C_SMBUS = 0x0720;

export const I2C_M_RD = 0x0001;
/** The kernel refuses an I2C_RDWR message longer than this (i2c-dev.c). */
export const I2C_RDWR_MAX_LEN = 8192;
export const I2C_RDWR_IOCTL_MAX_MSGS = 42;

export const I2C_FUNC_I2C = 0x00000001;
export const I2C_FUNC_SMBUS_QUICK = 0x00010000;
export const I2C_FUNC_SMBUS_READ_BYTE = 0x00020000;

export const I2C_SMBUS_READ = 1;
export const I2C_SMBUS_WRITE = 0;
export const I2C_SMBUS_QUICK = 0;
export const I2C_SMBUS_BYTE = 1;

export const I2C_MSG_SIZE = 16;
export const I2C_RDWR_IOCTL_DATA_SIZE = 16;
export const I2C_SMBUS_IOCTL_DATA_SIZE = 16;
export const I2C_SMBUS_DATA_SIZE = 34;

/** One message of an I2C_RDWR transaction; `buf` is the address of its data buffer. */
export interface I2cMsg {
  addr: number;
  flags: number;
  len: number;
  buf: bigint;
}

/** Encode an array of struct i2c_msg (contiguous, as the kernel reads them). */
export function encodeI2cMsgs(msgs: I2cMsg[]): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(I2C_MSG_SIZE * msgs.length));
  const view = new DataView(out.buffer);
  msgs.forEach((m, i) => {
    const at = i * I2C_MSG_SIZE;
    view.setUint16(at, m.addr, true);
    view.setUint16(at + 2, m.flags, true);
    view.setUint16(at + 4, m.len, true);
    view.setBigUint64(at + 8, m.buf, true);
  });
  return out;
}

/** Encode struct i2c_rdwr_ioctl_data pointing at `msgs` (an address). */
export function encodeRdwrData(msgs: bigint, nmsgs: number): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(I2C_RDWR_IOCTL_DATA_SIZE));
  const view = new DataView(out.buffer);
  view.setBigUint64(0, msgs, true);
  view.setUint32(8, nmsgs, true);
  return out;
}

/** Encode struct i2c_smbus_ioctl_data (used only by scan's quick-write / read-byte probes). */
export function encodeSmbusData(readWrite: number, command: number, size: number, data: bigint): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(I2C_SMBUS_IOCTL_DATA_SIZE));
  const view = new DataView(out.buffer);
  view.setUint8(0, readWrite);
  view.setUint8(1, command);
  view.setUint32(4, size, true);
  view.setBigUint64(8, data, true);
  return out;
}

/** Check an address is a 7-bit I2C address a driver may use (0x03–0x77, as i2cdetect). */
export function isValidAddress(address: number): boolean {
  return Number.isInteger(address) && address >= 0x03 && address <= 0x77;
}
