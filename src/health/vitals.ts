/**
 * Pi vitals: SoC temperature, the firmware's throttle word, the rpi_volt under-voltage alarm and
 * free space of the data partition and of /. Every /sys path goes through the configurable root,
 * so tests point it at a prepared tree. A file that is absent (not a Pi, no firmware driver) reads
 * as "unknown", never as an error: health must not fail on a laptop or a different board.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { libc } from "../hal/index.ts";
import { parseThrottled, type ThrottleState } from "./throttle.ts";

export type Unknown = "unknown";

export interface DiskSpace {
  path: string;
  totalBytes: number;
  /** Bytes an unprivileged writer may still use (f_bavail): what the queue can grow into. */
  availableBytes: number;
  freeBytes: number;
}

export interface Vitals {
  socTemperatureC: number | Unknown;
  throttle: ThrottleState | Unknown;
  /** rpi_volt hwmon in0_lcrit_alarm: the PMIC saw the supply drop below its limit. */
  underVoltageAlarm: boolean | Unknown;
  dataDisk: DiskSpace | Unknown;
  rootDisk: DiskSpace | Unknown;
}

/** VitalsReader reads the vitals now (a few small sysfs reads and two statvfs calls). */
export interface VitalsReader {
  read(): Vitals;
}

export interface VitalsOptions {
  /** system.root: prefix for /sys. */
  root: string;
  /** The directory that holds queue.db (its partition is the one that fills up). */
  dataDir: string;
  /** statvfs, injectable for tests; libc.statvfs by default. */
  statvfs?: (path: string) => { totalBytes: number; freeBytes: number; availableBytes: number };
}

export const THERMAL_ZONE0 = "sys/class/thermal/thermal_zone0/temp";
export const GET_THROTTLED = "sys/devices/platform/soc/soc:firmware/get_throttled";
export const HWMON_DIR = "sys/class/hwmon";

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

export function createVitalsReader({ root, dataDir, statvfs = libc.statvfs }: VitalsOptions): VitalsReader {
  const at = (rel: string) => join(root, rel);
  const disk = (path: string): DiskSpace | Unknown => {
    try {
      return { path, ...statvfs(path) };
    } catch {
      return "unknown";
    }
  };
  return {
    read() {
      const milli = Number.parseInt(readText(at(THERMAL_ZONE0))?.trim() ?? "", 10);
      const throttleText = readText(at(GET_THROTTLED));
      return {
        socTemperatureC: Number.isFinite(milli) ? milli / 1000 : "unknown",
        throttle: (throttleText !== undefined && parseThrottled(throttleText)) || "unknown",
        underVoltageAlarm: readVoltAlarm(at(HWMON_DIR)),
        dataDisk: disk(dataDir),
        rootDisk: disk(root),
      };
    },
  };
}

/** Finds the hwmon device named rpi_volt (its number varies between boots) and reads its alarm. */
function readVoltAlarm(hwmonDir: string): boolean | Unknown {
  let entries: string[];
  try {
    entries = readdirSync(hwmonDir);
  } catch {
    return "unknown";
  }
  for (const entry of entries.filter((e) => e.startsWith("hwmon")).sort()) {
    if (readText(join(hwmonDir, entry, "name"))?.trim() !== "rpi_volt") continue;
    const alarm = readText(join(hwmonDir, entry, "in0_lcrit_alarm"))?.trim();
    if (alarm === "0" || alarm === "1") return alarm === "1";
    return "unknown";
  }
  return "unknown";
}
