import { describe, expect, it } from "vitest";
import { i2cAdapterVerdict, i2cProbeVerdict } from "../../src/doctor/i2c-verdict.ts";
import { formatLine } from "../../src/doctor/index.ts";
import { classifyI2cError, I2cNotAdapter } from "../../src/hal/i2c/errors.ts";
import { Errno, SyscallError } from "../../src/hal/libc/index.ts";

const PATH = "/dev/i2c-1";
const device = { id: "i2c.air", what: "sensor air (bme280)", bus: 1, address: 0x76, path: PATH };
/** The error the bus really throws for a failed I2C_RDWR with this errno (classified as in bus.ts). */
const rdwr = (errno: number) =>
  classifyI2cError(new SyscallError("ioctl(I2C_RDWR)", errno, PATH), PATH, device.address);
const line = (errno: number) => formatLine(i2cProbeVerdict(device, rdwr(errno)));

describe("doctor: what an I2C probe's errno means", () => {
  it("a device that answers is ok", () => {
    expect(formatLine(i2cProbeVerdict(device, undefined))).toMatch(
      /^ok {4}i2c\.air +sensor air \(bme280\) answers at 0x76 on bus 1$/,
    );
  });

  it("ENXIO and EREMOTEIO (no acknowledgement): nothing answers, check the wiring and scan", () => {
    for (const [errno, name] of [
      [Errno.ENXIO, "ENXIO"],
      [Errno.EREMOTEIO, "EREMOTEIO"],
    ] as const)
      expect(line(errno)).toBe(
        `FAIL  i2c.air              sensor air (bme280): nothing answers at 0x76 on bus 1 (no acknowledgement, ${name}) — fix: check wiring (SDA GPIO2, SCL GPIO3, 3.3 V, GND) and the address: fieldrelay i2c scan --bus 1`,
      );
  });

  it("ETIMEDOUT: the bus is stuck, not the chip missing — pull-ups and a device holding SDA low", () => {
    const l = line(Errno.ETIMEDOUT);
    expect(l).not.toContain("nothing answers");
    expect(l).toMatch(/bus 1 timed out talking to 0x76 \(ETIMEDOUT\): SDA or SCL is held low/);
    expect(l).toMatch(
      /— fix: check the pull-ups to 3\.3 V and for a device holding SDA low .*i2c scan --bus 1$/,
    );
  });

  it("EIO: the transfer failed (a NACK on some adapters, or a bus fault), wiring fix", () => {
    expect(line(Errno.EIO)).toMatch(/the transfer to 0x76 on bus 1 failed \(EIO\).*— fix: check wiring/);
  });

  it("EAGAIN: lost arbitration to another master", () => {
    expect(line(Errno.EAGAIN)).toMatch(
      /lost arbitration on bus 1 \(EAGAIN\).*— fix: keep one I2C master per bus/,
    );
  });

  it("EBUSY: a warning that a kernel driver owns the address", () => {
    const v = i2cProbeVerdict(device, rdwr(Errno.EBUSY));
    expect(v.status).toBe("warn");
    expect(v.message).toContain("EBUSY");
  });

  it("ENOSYS on the transfer (qemu-user): the emulator, never 'nothing answers'", () => {
    expect(line(Errno.ENOSYS)).toMatch(
      /sensor air \(bme280\): \/dev\/i2c-1: ioctl\(I2C_RDWR\) is not implemented \(ENOSYS\).*qemu-user.* — fix: run doctor natively on the device/,
    );
  });

  it("an error without an errno keeps its message", () => {
    expect(formatLine(i2cProbeVerdict(device, new Error("bus closed")))).toMatch(
      /probing 0x76 on bus 1 failed: bus closed/,
    );
  });
});

describe("doctor: what an I2C adapter's errno means", () => {
  it("ENOTTY / EINVAL from I2C_FUNCS: not an i2c-dev node, load i2c-dev", () => {
    for (const errno of [Errno.ENOTTY, Errno.EINVAL])
      expect(
        formatLine(i2cAdapterVerdict("i2c.bus1", PATH, new I2cNotAdapter(PATH, errno, "ioctl(I2C_FUNCS)"))),
      ).toMatch(
        /^FAIL {2}i2c\.bus1 +\/dev\/i2c-1 is not an I2C adapter: ioctl\(I2C_FUNCS\) failed with (ENOTTY|EINVAL) — fix: load i2c-dev/,
      );
  });

  it("ENOSYS from I2C_FUNCS: the emulator", () => {
    const v = i2cAdapterVerdict("i2c.bus1", PATH, new SyscallError("ioctl(I2C_FUNCS)", Errno.ENOSYS, PATH));
    expect(v.message).toMatch(/ioctl\(I2C_FUNCS\) is not implemented \(ENOSYS\).*qemu-user/);
  });

  it("EOPNOTSUPP: SMBus only", () => {
    const v = i2cAdapterVerdict(
      "i2c.bus1",
      PATH,
      new SyscallError("ioctl(I2C_FUNCS)", Errno.EOPNOTSUPP, PATH),
    );
    expect(v.message).toContain("speaks SMBus only");
  });

  it("EACCES: the udev rule and group", () => {
    const v = i2cAdapterVerdict("i2c.bus1", PATH, new SyscallError("open", Errno.EACCES, PATH));
    expect(v.fix).toContain("60-fieldrelay.rules");
  });
});
