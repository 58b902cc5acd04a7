import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  formatScanGrid,
  I2cAdapterMissing,
  I2cAddressBusy,
  I2cNack,
  I2cNotAdapter,
  LinuxI2cBus,
  ModelBus,
  openI2cBus,
  openPromisified,
  PromisifiedBus,
  probeMode,
  SmbusDevice,
  scanBus,
} from "../../src/hal/i2c/index.ts";
import { RegisterFileModel } from "../../src/hal/i2c/model/register-file.ts";
import { Errno, libc, SyscallError } from "../../src/hal/index.ts";

const root = mkdtempSync(join(tmpdir(), "fr-i2c-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(join(root, "dev"));
writeFileSync(join(root, "dev", "i2c-3"), "not a character device");

describe("openI2cBus through the kernel (bun:ffi)", () => {
  it("names a missing adapter and says how to enable I2C", async () => {
    const error = await openI2cBus(1, { root }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(I2cAdapterMissing);
    expect((error as I2cAdapterMissing).describe()).toBe(
      `${root}/dev/i2c-1: no such adapter (ENOENT) — enable I2C with dtparam=i2c_arm=on`,
    );
    expect((error as SyscallError).errno).toBe(Errno.ENOENT);
  });

  it("opens the i2c-bus-style promisified bus the same way (same typed errors)", async () => {
    await expect(openPromisified(1, { root })).rejects.toBeInstanceOf(I2cAdapterMissing);
  });

  it("reaches the kernel: I2C_FUNCS on a regular file fails with ENOTTY as a typed error", async () => {
    const error = await openI2cBus(3, { root }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(I2cNotAdapter);
    expect((error as SyscallError).code).toBe("ENOTTY");
    expect((error as SyscallError).syscall).toBe("ioctl(I2C_FUNCS)");
    expect((error as Error).message).toBe(
      `${root}/dev/i2c-3: not an I2C adapter (ioctl(I2C_FUNCS) failed with ENOTTY)`,
    );
  });

  it("passes an I2C_RDWR struct to the kernel and reports its errno (ENOTTY on a regular file)", async () => {
    const path = join(root, "dev", "i2c-3");
    const bus = new LinuxI2cBus(path, libc.open(path, libc.O_RDWR), 0x0eff0001);
    const error = await bus.transfer(0x76, Uint8Array.of(0xd0), 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SyscallError);
    expect((error as SyscallError).code).toBe("ENOTTY");
    expect((error as SyscallError).syscall).toBe("ioctl(I2C_RDWR)");
    // A probe that cannot even select the address finds nothing there.
    expect(await bus.probe(0x76, "quick")).toBe("absent");
    await bus.close();
    await expect(bus.transfer(0x76, new Uint8Array(0), 1)).rejects.toThrow(/EBADF/);
  });

  it("refuses addresses beyond 7 bits and messages beyond the kernel's 8192-byte limit", async () => {
    const path = join(root, "dev", "i2c-3");
    const bus = new LinuxI2cBus(path, libc.open(path, libc.O_RDWR), 1);
    await expect(bus.transfer(0x80, new Uint8Array(1), 0)).rejects.toThrow(RangeError);
    await expect(bus.transfer(0x10, new Uint8Array(0), 8193)).rejects.toThrow(RangeError);
    await bus.close();
  });
});

/** A chip whose address a kernel driver holds: every transfer fails with EBUSY. */
const ownedByDriver = {
  transfer(): Uint8Array {
    throw new SyscallError("ioctl(I2C_RDWR)", Errno.EBUSY, "/dev/i2c-1");
  },
};

describe("SMBus helpers over any I2cBus (i2c-bus shapes)", () => {
  const model = () => new RegisterFileModel({ 208: 0x60, 136: 0x70, 137: 0x6b, 138: 0x43 });

  it("reads a byte and a little-endian word with the register pointer in the same transaction", async () => {
    const bus = new ModelBus("/dev/i2c-1", { 118: model() });
    const i2c = new PromisifiedBus(bus);
    expect(await i2c.readByte(0x76, 0xd0)).toBe(0x60);
    expect(await i2c.readWord(0x76, 0x88)).toBe(0x6b70);
    expect(bus.log).toEqual([
      { address: 0x76, write: [0xd0], readLength: 1 },
      { address: 0x76, write: [0x88], readLength: 2 },
    ]);
  });

  it("writes and reads blocks, bytes and words, and plain i2cRead/i2cWrite", async () => {
    const chip = model();
    const i2c = new PromisifiedBus(new ModelBus("/dev/i2c-1", { 80: chip }));
    expect(await i2c.writeI2cBlock(0x50, 0x10, 3, Uint8Array.of(1, 2, 3, 99))).toMatchObject({
      bytesWritten: 3,
    });
    expect([...chip.registers.subarray(0x10, 0x14)]).toEqual([1, 2, 3, 0]);
    const buffer = new Uint8Array(4);
    expect(await i2c.readI2cBlock(0x50, 0x10, 3, buffer)).toEqual({
      bytesRead: 3,
      buffer: Uint8Array.of(1, 2, 3, 0),
    });
    await i2c.writeByte(0x50, 0x20, 0xab);
    await i2c.writeWord(0x50, 0x21, 0x1234);
    expect([...chip.registers.subarray(0x20, 0x23)]).toEqual([0xab, 0x34, 0x12]);
    await i2c.i2cWrite(0x50, 1, Uint8Array.of(0x20));
    expect((await i2c.i2cRead(0x50, 2, new Uint8Array(2))).buffer).toEqual(Uint8Array.of(0xab, 0x34));
    await i2c.sendByte(0x50, 0x21);
    expect(await i2c.receiveByte(0x50)).toBe(0x34);
    await expect(i2c.writeByte(0x50, 0x20, 256)).rejects.toThrow(RangeError);
    await expect(i2c.readI2cBlock(0x50, 0, 33, new Uint8Array(33))).rejects.toThrow(RangeError);
  });

  it("turns a NACK into I2cNack naming the bus and address", async () => {
    const device = new SmbusDevice(new ModelBus("/dev/i2c-1"), 0x77);
    const error = await device.readByte(0xd0).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(I2cNack);
    expect((error as I2cNack).message).toBe("/dev/i2c-1: no acknowledgement (NACK) at address 0x77 (ENXIO)");
    expect((error as I2cNack).errno).toBe(Errno.ENXIO);
  });

  it("turns EBUSY into I2cAddressBusy: the address is owned by a kernel driver", async () => {
    const device = new SmbusDevice(new ModelBus("/dev/i2c-1", { 104: ownedByDriver }), 0x68);
    const error = await device.readBlock(0, 7).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(I2cAddressBusy);
    expect((error as I2cAddressBusy).message).toBe(
      "/dev/i2c-1: address 0x68 is owned by a kernel driver (EBUSY)",
    );
  });
});

describe("Bus scan (i2cdetect)", () => {
  it("probes 0x30–0x37 and 0x50–0x5F with read-byte and every other address with a quick write", () => {
    expect(probeMode(0x2f)).toBe("quick");
    expect(probeMode(0x30)).toBe("read");
    expect(probeMode(0x37)).toBe("read");
    expect(probeMode(0x38)).toBe("quick");
    expect(probeMode(0x4f)).toBe("quick");
    expect(probeMode(0x50)).toBe("read");
    expect(probeMode(0x5f)).toBe("read");
    expect(probeMode(0x60)).toBe("quick");
  });

  it("finds answering chips, marks driver-owned addresses UU and prints the i2cdetect grid", async () => {
    const bus = new ModelBus("/dev/i2c-1", {
      72: new RegisterFileModel(),
      80: new RegisterFileModel(),
      104: ownedByDriver,
      118: new RegisterFileModel(),
    });
    const result = await scanBus(bus);
    expect([...result]).toEqual([
      [0x48, "found"],
      [0x50, "found"],
      [0x68, "busy"],
      [0x76, "found"],
    ]);
    expect(bus.log.find((t) => t.address === 0x50)).toEqual({ address: 0x50, write: [], readLength: 1 });
    expect(bus.log.find((t) => t.address === 0x48)).toEqual({ address: 0x48, write: [], readLength: 0 });
    expect(bus.log.map((t) => t.address)[0]).toBe(0x08);
    expect(bus.log.at(-1)?.address).toBe(0x77);
    expect(formatScanGrid(result)).toBe(
      [
        "     0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f",
        "00:                         -- -- -- -- -- -- -- --",
        "10: -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- --",
        "20: -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- --",
        "30: -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- --",
        "40: -- -- -- -- -- -- -- -- 48 -- -- -- -- -- -- --",
        "50: 50 -- -- -- -- -- -- -- -- -- -- -- -- -- -- --",
        "60: -- -- -- -- -- -- -- -- UU -- -- -- -- -- -- --",
        "70: -- -- -- -- -- -- 76 --",
      ].join("\n"),
    );
    expect(await new PromisifiedBus(bus).scan()).toEqual([0x48, 0x50, 0x76]);
  });

  it("surfaces a stuck bus (ETIMEDOUT) instead of reporting an empty bus", async () => {
    const stuck = {
      transfer(): Uint8Array {
        throw new SyscallError("ioctl(I2C_RDWR)", Errno.ETIMEDOUT, "/dev/i2c-1");
      },
    };
    await expect(scanBus(new ModelBus("/dev/i2c-1", { 8: stuck }))).rejects.toThrow(/ETIMEDOUT/);
  });
});
