/**
 * `fieldrelay doctor`: checks a device against everything fieldrelay needs and says, one line per
 * check, what is wrong and how to fix it. Read-only: it opens devices and files to look, probes I2C
 * addresses with a 1-byte read and connects to the broker and ports, and never writes.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
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

/** The service's EnvironmentFile= (deploy/systemd/fieldrelay.service): where its secrets live. */
export const SERVICE_ENV_FILE = "/etc/fieldrelay/env";

/** FIELDRELAY_* assignments of a systemd EnvironmentFile (KEY=VALUE, # or ; comments, quotes). */
export function parseEnvironmentFile(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const m = /^(FIELDRELAY_[A-Z0-9_]+)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2]!;
    if (/^(".*"|'.*')$/.test(value)) value = value.slice(1, -1);
    vars[m[1]!] = value;
  }
  return vars;
}

/**
 * The environment doctor loads the config with: the service's EnvironmentFile when this user can
 * read it (root can; it holds FIELDRELAY_MQTT_PASSWORD), under the caller's own variables.
 */
export function serviceEnvironment(env: NodeJS.ProcessEnv, file = SERVICE_ENV_FILE): NodeJS.ProcessEnv {
  try {
    return { ...parseEnvironmentFile(readFileSync(file, "utf8")), ...env };
  } catch {
    return env; // absent or not readable by this user: the broker check's fix says so
  }
}

/** The real device's context: the config at configPath (its system.root), systemd, adjtimex. */
export function deviceContext(configPath: string, callerEnv: NodeJS.ProcessEnv = process.env): DoctorContext {
  const env = serviceEnvironment(callerEnv);
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
