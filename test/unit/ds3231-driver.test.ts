import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Ds3231 } from "../../src/clock/rtc/ds3231.ts";
import { Ds3231Model } from "../../src/clock/rtc/model.ts";
import { linuxI2cOpener } from "../../src/clock/rtc/open-bus.ts";
import { openRtc } from "../../src/clock/rtc/select.ts";
import { ModelBus } from "../../src/hal/i2c/model-bus.ts";
import { Errno, SyscallError } from "../../src/hal/libc/index.ts";

const T = Date.UTC(2026, 10, 25, 13, 7, 9);

function rig(options: Partial<ConstructorParameters<typeof Ds3231Model>[0]> = {}) {
  let host = 1_000_000;
  const model = new Ds3231Model({ nowMs: () => host, timeMs: T, osf: false, ...options });
  const bus = new ModelBus("/dev/i2c-1", { 104: model });
  return { model, bus, chip: new Ds3231(bus), advance: (ms: number) => (host += ms) };
}

describe("Ds3231Model register semantics", () => {
  it("reads from the pointer set by the last write and auto-increments, wrapping after 12h", () => {
    const { model } = rig({ temperatureC: 21.5 });
    model.transfer(Uint8Array.of(0x11), 0);
    expect([...model.transfer(new Uint8Array(0), 2)]).toEqual([21, 0x80]);
    model.transfer(Uint8Array.of(0x12), 0);
    const wrapped = model.transfer(new Uint8Array(0), 2);
    expect(wrapped[1]).toBe(0x09); // 12h, then 00h (seconds)
  });

  it("keeps time advancing from the injected clock, in whole seconds", async () => {
    const { chip, advance } = rig();
    expect(await chip.readTime()).toBe(T);
    advance(999);
    expect(await chip.readTime()).toBe(T);
    advance(1);
    expect(await chip.readTime()).toBe(T + 1000);
    advance(86_400_000);
    expect(await chip.readTime()).toBe(T + 1000 + 86_400_000);
  });

  it("rolls over 2099-12-31 23:59:59 → 2100-01-01 and sets the century bit", async () => {
    const { chip, bus, advance } = rig({ timeMs: Date.UTC(2099, 11, 31, 23, 59, 59) });
    expect(await chip.readTime()).toBe(Date.UTC(2099, 11, 31, 23, 59, 59));
    advance(1000);
    expect(await chip.readTime()).toBe(Date.UTC(2100, 0, 1));
    const regs = await bus.transfer(0x68, Uint8Array.of(0x05), 2);
    expect([...regs]).toEqual([0x81, 0x00]);
  });

  it("answers in 12-hour mode when set so, and the driver converts to 24-hour", async () => {
    const { chip, bus } = rig({ twelveHour: true, timeMs: Date.UTC(2026, 0, 1, 23, 30, 0) });
    const [hours] = await bus.transfer(0x68, Uint8Array.of(0x02), 1);
    expect(hours).toBe(0x40 | 0x20 | 0x11); // 11 PM
    expect(await chip.readTime()).toBe(Date.UTC(2026, 0, 1, 23, 30, 0));
  });

  it("accepts a time written in 12-hour mode and keeps that mode", async () => {
    const { chip, bus } = rig();
    // 2026-03-04 12:15:00 written as 12 PM
    await bus.transfer(0x68, Uint8Array.of(0x00, 0x00, 0x15, 0x40 | 0x20 | 0x12, 4, 0x04, 0x03, 0x26), 0);
    expect(await chip.readTime()).toBe(Date.UTC(2026, 2, 4, 12, 15, 0));
    const [hours] = await bus.transfer(0x68, Uint8Array.of(0x02), 1);
    expect(hours! & 0x40).toBe(0x40);
  });

  it("answers EBUSY when owned by a kernel driver", async () => {
    const { chip } = rig({ ownedByKernel: true });
    const e = await chip.readStatus().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SyscallError);
    expect((e as SyscallError).errno).toBe(Errno.EBUSY);
  });
});

describe("Ds3231 driver", () => {
  it("reads time, temperature, aging offset and a clear OSF as a valid reading", async () => {
    const { chip } = rig({ temperatureC: -3.25, agingOffset: -7 });
    expect(await chip.read()).toEqual({ wallMs: T, valid: true, osf: false, temperatureC: -3.25 });
    expect(await chip.readAgingOffset()).toBe(-7);
  });

  it("reports OSF after battery loss as invalid, never a usable time", async () => {
    const { chip, model } = rig();
    model.batteryLoss();
    const r = await chip.read();
    expect(r.osf).toBe(true);
    expect(r.valid).toBe(false);
    expect(r.wallMs).toBe(Date.UTC(2000, 0, 1));
    expect(r.problem).toMatch(/oscillator-stop flag/);
  });

  it("writes the time in one transaction in 24-hour mode, then clears OSF", async () => {
    const { chip, model, bus } = rig({ twelveHour: true });
    model.batteryLoss();
    bus.log.length = 0;
    const t = Date.UTC(2031, 6, 14, 18, 45, 30, 600);
    await chip.writeTime(t);
    expect(bus.log[0]).toEqual({
      address: 0x68,
      write: [0x00, 0x30, 0x45, 0x18, 2, 0x14, 0x07, 0x31],
      readLength: 0,
    });
    expect(bus.log.at(-1)).toEqual({ address: 0x68, write: [0x0f, 0x00], readLength: 0 });
    expect(model.osf).toBe(false);
    expect(await chip.readTime()).toBe(Date.UTC(2031, 6, 14, 18, 45, 30));
    const r = await chip.read();
    expect(r.valid).toBe(true);
  });

  it("does not clear OSF when the time write fails", async () => {
    const { chip, model } = rig();
    model.batteryLoss();
    await expect(chip.writeTime(Date.UTC(1999, 0, 1))).rejects.toThrow(/outside/);
    expect(model.osf).toBe(true);
  });

  it("sets 2099-12-31 23:59:59 and rolls into 2100", async () => {
    const { chip, advance } = rig();
    await chip.writeTime(Date.UTC(2099, 11, 31, 23, 59, 59));
    advance(1500);
    expect(await chip.readTime()).toBe(Date.UTC(2100, 0, 1));
  });
});

const root = mkdtempSync(join(tmpdir(), "fr-rtcsel-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
function fakeRtc(dirRoot: string, n: number, name: string, sinceEpoch: string) {
  const dir = join(dirRoot, "sys/class/rtc", `rtc${n}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "name"), `${name}\n`);
  writeFileSync(join(dir, "since_epoch"), `${sinceEpoch}\n`);
  return dir;
}

describe("openRtc path choice", () => {
  const kernelRoot = join(root, "kernel");
  fakeRtc(kernelRoot, 0, "rtc-ds1307 1-0068", String(T / 1000));
  const emptyRoot = join(root, "empty");
  mkdirSync(emptyRoot);
  const otherRoot = join(root, "other");
  fakeRtc(otherRoot, 0, "rpi-rtc soc:rpi_rtc", "1700000000");

  const modelBus = (opts: Partial<ConstructorParameters<typeof Ds3231Model>[0]> = {}) => {
    const bus = new ModelBus("/dev/i2c-1", {
      104: new Ds3231Model({ nowMs: () => 0, timeMs: T, osf: false, ...opts }),
    });
    return async () => bus;
  };

  it("auto: uses the kernel path when rtc-ds1307 is bound, and reads since_epoch", async () => {
    const c = await openRtc({
      mode: "auto",
      root: kernelRoot,
      busNumber: 1,
      openBus: linuxI2cOpener(kernelRoot),
    });
    expect(c.path).toBe("kernel");
    expect(c.reason).toMatch(/rtc-ds1307/);
    expect(await c.rtc!.read()).toEqual({ wallMs: T, valid: true, osf: false, temperatureC: undefined });
  });

  it("auto: without a driver, probes the chip over I2C", async () => {
    const c = await openRtc({ mode: "auto", root: emptyRoot, busNumber: 1, openBus: modelBus() });
    expect(c.path).toBe("i2c");
    expect(c.rtc!.description).toBe("DS3231 at 0x68 on I2C bus 1");
    expect((await c.rtc!.read()).wallMs).toBe(T);
  });

  it("i2c: EBUSY → reports the kernel owns 0x68 and prefers the kernel path", async () => {
    const c = await openRtc({
      mode: "i2c",
      root: otherRoot,
      busNumber: 1,
      openBus: modelBus({ ownedByKernel: true }),
    });
    expect(c.path).toBe("kernel");
    expect(c.reason).toMatch(/address 0x68 is owned by a kernel driver/);
  });

  it("auto: nothing answering → no RTC, saying why", async () => {
    const empty = new ModelBus();
    const c = await openRtc({ mode: "auto", root: emptyRoot, busNumber: 1, openBus: async () => empty });
    expect(c).toMatchObject({ rtc: undefined, path: "none" });
    expect(c.reason).toMatch(/no DS3231 answers at 0x68 on I2C bus 1 \(ENXIO\)/);
  });

  it("auto: a bus that cannot be opened → no RTC with the opener's message", async () => {
    const c = await openRtc({
      mode: "auto",
      root: emptyRoot,
      busNumber: 3,
      openBus: linuxI2cOpener(emptyRoot),
    });
    expect(c.path).toBe("none");
    expect(c.reason).toMatch(/dev\/i2c-3: no such adapter \(ENOENT\)/);
  });

  it("kernel: takes a non-DS driver when it is the only RTC; none without any", async () => {
    expect((await openRtc({ mode: "kernel", root: otherRoot, busNumber: 1, openBus: modelBus() })).path).toBe(
      "kernel",
    );
    expect((await openRtc({ mode: "kernel", root: emptyRoot, busNumber: 1, openBus: modelBus() })).path).toBe(
      "none",
    );
  });

  it("none: no RTC, even when one exists", async () => {
    expect(
      (await openRtc({ mode: "none", root: kernelRoot, busNumber: 1, openBus: modelBus() })).rtc,
    ).toBeUndefined();
  });

  it("kernel path: a since_epoch that is not seconds is invalid, never a time", async () => {
    const dir = join(root, "garbage");
    fakeRtc(dir, 0, "rtc-ds1307 1-0068", "x");
    const { readKernelRtc } = await import("../../src/clock/rtc/kernel.ts");
    const r = readKernelRtc({ dir: join(dir, "sys/class/rtc/rtc0"), name: "rtc-ds1307" });
    expect(r).toMatchObject({ valid: false, wallMs: undefined });
    expect(r.problem).toMatch(/is not seconds/);
  });

  it("kernel path: reads the die temperature from hwmon (m°C)", async () => {
    const dir = join(root, "hwmon");
    const rtc0 = fakeRtc(dir, 0, "rtc-ds1307 1-0068", "1700000000");
    mkdirSync(join(rtc0, "device/hwmon/hwmon2"), { recursive: true });
    writeFileSync(join(rtc0, "device/hwmon/hwmon2/temp1_input"), "23250\n");
    const c = await openRtc({ mode: "auto", root: dir, busNumber: 1, openBus: linuxI2cOpener(dir) });
    expect(await c.rtc!.read()).toEqual({
      wallMs: 1_700_000_000_000,
      valid: true,
      osf: false,
      temperatureC: 23.25,
    });
  });
});
