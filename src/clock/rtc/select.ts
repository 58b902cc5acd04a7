/**
 * Which path reaches the RTC (config rtc.mode):
 *   none   — no RTC.
 *   kernel — /sys/class/rtc/rtcN; a DS3231-family driver first, else the first RTC there.
 *   i2c    — registers over /dev/i2c-<rtc.bus>; EBUSY means a kernel driver owns the address.
 *   auto   — kernel if a DS3231-family driver is bound; else probe the chip over I2C; if that
 *            answers EBUSY ("owned by a kernel driver") use the kernel path after all; if
 *            nothing answers, no RTC. Every outcome carries `reason`, which status and the CLI show.
 */
import { Errno, errnoName, SyscallError } from "../../hal/libc/index.ts";
import { DS3231_ADDRESS } from "./codec.ts";
import { Ds3231, ds3231Rtc } from "./ds3231.ts";
import { findKernelRtc, kernelRtc } from "./kernel.ts";
import type { OpenI2cBus } from "./open-bus.ts";
import type { Rtc, RtcPath } from "./types.ts";

export type RtcMode = "auto" | "kernel" | "i2c" | "none";

export interface OpenRtcOptions {
  mode: RtcMode;
  root: string;
  busNumber: number;
  address?: number;
  openBus: OpenI2cBus;
}

export interface RtcChoice {
  rtc: Rtc | undefined;
  path: RtcPath | "none";
  /** Why this path (and why not the others), in words. */
  reason: string;
}

const hex = (n: number) => `0x${n.toString(16)}`;

async function closeBus(bus: unknown): Promise<void> {
  const c = (bus as { close?: () => unknown }).close;
  if (typeof c === "function") await c.call(bus);
}

type Probe = { rtc: Rtc } | { busy: true; reason: string } | { failed: string };

async function probeI2c(o: OpenRtcOptions, address: number): Promise<Probe> {
  let bus: Awaited<ReturnType<OpenI2cBus>>;
  try {
    bus = await o.openBus(o.busNumber);
  } catch (error) {
    return { failed: `I2C bus ${o.busNumber} cannot be opened: ${(error as Error).message}` };
  }
  try {
    await new Ds3231(bus, address).readStatus();
    return { rtc: ds3231Rtc(bus, { address, busNumber: o.busNumber, close: () => closeBus(bus) }) };
  } catch (error) {
    await closeBus(bus);
    if (error instanceof SyscallError && error.errno === Errno.EBUSY)
      return { busy: true, reason: `address ${hex(address)} is owned by a kernel driver` };
    const code = error instanceof SyscallError ? ` (${errnoName(error.errno)})` : "";
    return { failed: `no DS3231 answers at ${hex(address)} on I2C bus ${o.busNumber}${code}` };
  }
}

export async function openRtc(o: OpenRtcOptions): Promise<RtcChoice> {
  const address = o.address ?? DS3231_ADDRESS;
  if (o.mode === "none") return { rtc: undefined, path: "none", reason: "rtc.mode is none" };
  if (o.mode === "kernel") {
    const k = findKernelRtc(o.root, true);
    return k
      ? { rtc: kernelRtc(k), path: "kernel", reason: `kernel RTC ${k.dir} (${k.name})` }
      : {
          rtc: undefined,
          path: "none",
          reason: `rtc.mode is kernel but ${o.root.replace(/\/$/, "")}/sys/class/rtc has no RTC`,
        };
  }
  if (o.mode === "auto") {
    const k = findKernelRtc(o.root);
    if (k)
      return { rtc: kernelRtc(k), path: "kernel", reason: `kernel driver ${k.name} owns the RTC (${k.dir})` };
  }
  const probe = await probeI2c(o, address);
  if ("rtc" in probe)
    return { rtc: probe.rtc, path: "i2c", reason: `${probe.rtc.description}, no kernel driver bound` };
  if ("busy" in probe) {
    const k = findKernelRtc(o.root, true);
    if (k) return { rtc: kernelRtc(k), path: "kernel", reason: `${probe.reason}; using kernel RTC ${k.dir}` };
    return {
      rtc: undefined,
      path: "none",
      reason: `${probe.reason}, but no /sys/class/rtc entry exists for it`,
    };
  }
  return { rtc: undefined, path: "none", reason: probe.failed };
}
