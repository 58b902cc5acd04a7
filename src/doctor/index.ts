/**
 * `fieldrelay doctor`: checks a device against everything fieldrelay needs and says, one line per
 * check, what is wrong and how to fix it. Read-only: it opens devices and files to look, probes I2C
 * addresses with a 1-byte read and connects to the broker and ports, and never writes.
 */
import { spawnSync } from "node:child_process";
import { syncSourceFromConfig } from "../clock/index.ts";
import { type Config, ConfigError, loadConfig } from "../config/index.ts";
import { statvfs } from "../hal/libc/index.ts";
import type { DoctorContext, UnitProperties } from "./types.ts";

export { type DoctorResult, exitFor, formatLine, formatSummary, runDoctor } from "./run.ts";
export type { Check, CheckResult, DoctorContext, Status } from "./types.ts";

/** `systemctl show` for a unit; undefined when there is no systemctl or no systemd to ask. */
export function systemctlShow(unit: string, properties: string[]): Promise<UnitProperties | undefined> {
  const r = spawnSync("systemctl", ["show", unit, `--property=${properties.join(",")}`], {
    encoding: "utf8",
    timeout: 5000,
  });
  if (r.error || r.status !== 0) return Promise.resolve(undefined);
  const props: UnitProperties = {};
  for (const line of r.stdout.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) props[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return Promise.resolve(props);
}

/** The real device's context: the config at configPath (its system.root), systemd, adjtimex. */
export function deviceContext(configPath: string, env: NodeJS.ProcessEnv = process.env): DoctorContext {
  let config: Config | undefined;
  let configProblem: string | undefined;
  try {
    config = loadConfig({ path: configPath, env });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    configProblem = error.message;
  }
  const root = config?.system.root ?? env.FIELDRELAY_SYSTEM_ROOT ?? "/";
  const sync = syncSourceFromConfig(config?.clock.sync_source ?? "adjtimex");
  return {
    root,
    configPath,
    config,
    ...(configProblem ? { configProblem } : {}),
    unit: "fieldrelay.service",
    now: () => Date.now(),
    showUnit: systemctlShow,
    syncState: () => sync.read(),
    diskSpace: (path) => statvfs(path),
    timeoutMs: 3000,
  };
}
