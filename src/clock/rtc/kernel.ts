/**
 * The kernel path: when `dtoverlay=i2c-rtc,ds3231` binds rtc-ds1307 to the chip, the kernel owns
 * address 0x68 and exposes /sys/class/rtc/rtcN. `name` says which driver ("rtc-ds1307 1-0068"),
 * `since_epoch` is the time in seconds. rtc-ds1307 refuses to read the time (EINVAL) while OSF
 * is set, which is how OSF shows on this path. The die temperature appears through hwmon at
 * rtcN/device/hwmon/hwmonM/temp1_input (m°C). Setting it goes through the device node /dev/rtcN
 * with the RTC_SET_TIME ioctl (hal/rtc), at the system clock's next whole second (the RTC counts
 * whole seconds, so that is when its second can be right), as `hwclock --systohc` does.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setRtcTime } from "../../hal/rtc/index.ts";
import type { Rtc, RtcReading } from "./types.ts";

export const RTC_CLASS = "sys/class/rtc";
const DS_NAME = /ds1307|ds3231|ds1337|ds1339/i;

export interface KernelRtcInfo {
  dir: string;
  name: string;
  /** Its character device, <root>/dev/rtcN. */
  node: string;
}

/** rtcN directories under root, with their driver name, in numeric order. */
export function listKernelRtcs(root: string): KernelRtcInfo[] {
  const base = join(root, RTC_CLASS);
  let entries: string[];
  try {
    entries = readdirSync(base).filter((e) => /^rtc\d+$/.test(e));
  } catch {
    return [];
  }
  entries.sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));
  return entries.map((e) => {
    const dir = join(base, e);
    let name = "";
    try {
      name = readFileSync(join(dir, "name"), "utf8").trim();
    } catch {}
    return { dir, name, node: join(root, "dev", e) };
  });
}

/** The kernel RTC driving a DS3231 (name mentions ds1307/ds3231), or with `anyDriver` the first RTC. */
export function findKernelRtc(root: string, anyDriver = false): KernelRtcInfo | undefined {
  const all = listKernelRtcs(root);
  return all.find((r) => DS_NAME.test(r.name)) ?? (anyDriver ? all[0] : undefined);
}

function readTemperatureC(dir: string): number | undefined {
  const hwmon = join(dir, "device", "hwmon");
  if (!existsSync(hwmon)) return undefined;
  for (const h of readdirSync(hwmon)) {
    try {
      const milli = Number(readFileSync(join(hwmon, h, "temp1_input"), "utf8").trim());
      if (Number.isFinite(milli)) return milli / 1000;
    } catch {}
  }
  return undefined;
}

export function readKernelRtc(info: Pick<KernelRtcInfo, "dir" | "name">): RtcReading {
  const temperatureC = readTemperatureC(info.dir);
  const file = join(info.dir, "since_epoch");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return {
      wallMs: undefined,
      valid: false,
      // rtc-ds1307 answers EINVAL while OSF is set; anything else is reported as it is.
      osf: code === "EINVAL",
      temperatureC,
      problem:
        code === "EINVAL"
          ? `${file}: the kernel reports the RTC time invalid (oscillator stopped; battery?)`
          : `${file}: cannot read (${code})`,
    };
  }
  const seconds = Number(text.trim());
  if (!Number.isInteger(seconds) || seconds < 0)
    return {
      wallMs: undefined,
      valid: false,
      osf: false,
      temperatureC,
      problem: `${file}: "${text.trim()}" is not seconds`,
    };
  return { wallMs: seconds * 1000, valid: true, osf: false, temperatureC };
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function kernelRtc(info: KernelRtcInfo, sleep = realSleep): Rtc {
  return {
    path: "kernel",
    description: `${info.dir} (${info.name || "unnamed driver"})`,
    read: async () => readKernelRtc(info),
    write: async (wallMs) => {
      const wait = (1000 - (wallMs % 1000)) % 1000;
      await sleep(wait);
      setRtcTime(info.node, wallMs + wait);
    },
    close: async () => {},
  };
}
