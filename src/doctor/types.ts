/**
 * Types of `fieldrelay doctor`: a check looks at one thing the device needs and returns one or
 * more results, each ok / warn / fail with a one-line message and, unless ok, the fix.
 */
import type { SyncState } from "../clock/index.ts";
import type { Config } from "../config/index.ts";

export type Status = "ok" | "warn" | "fail";

export interface CheckResult {
  /** Stable dotted name, e.g. "storage.data_journal" (tests and --json consumers key on it). */
  id: string;
  status: Status;
  message: string;
  /** What to do about it (warn and fail only). */
  fix?: string;
}

/** systemctl show's properties of a unit; undefined when systemd is not there to ask. */
export type UnitProperties = Record<string, string>;

/**
 * Everything a check reads, injected: the filesystem root for /dev /sys /proc and /etc (a prepared
 * tree in tests), the clock, systemd and the kernel's sync state.
 */
export interface DoctorContext {
  root: string;
  configPath: string;
  /** The loaded config; undefined when it is missing or invalid (configProblem says why). */
  config: Config | undefined;
  configProblem?: string;
  /** The systemd unit fieldrelay runs as. */
  unit: string;
  now(): number;
  showUnit(unit: string, properties: string[]): Promise<UnitProperties | undefined>;
  syncState(): SyncState;
  /** statvfs(3) of a path: total and available bytes. */
  diskSpace(path: string): { totalBytes: number; availableBytes: number };
  /** How long a network probe (broker, ports) may take. */
  timeoutMs: number;
}

export type Check = (ctx: DoctorContext) => Promise<CheckResult[]> | CheckResult[];

export const ok = (id: string, message: string): CheckResult => ({ id, status: "ok", message });
export const warn = (id: string, message: string, fix: string): CheckResult => ({
  id,
  status: "warn",
  message,
  fix,
});
export const fail = (id: string, message: string, fix: string): CheckResult => ({
  id,
  status: "fail",
  message,
  fix,
});
