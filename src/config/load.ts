/**
 * loadConfig reads the TOML file, applies FIELDRELAY_<SECTION>_<KEY> environment overrides,
 * validates the result and returns either the effective Config or every problem found, each
 * with its key path. It never exits or prints: the CLI decides what to do with problems.
 */
import { readFileSync } from "node:fs";
import { distance } from "fastest-levenshtein";
import { parse as parseToml, TomlError } from "smol-toml";
import type { z } from "zod";
import { FieldrelayError } from "../errors/index.ts";
import { driverNames, sensorOptionsSchema } from "../sensors/registry.ts";
import { crossCheck } from "./checks.ts";
import { type Config, configSchema, type SensorConfig } from "./schema.ts";

export const DEFAULT_CONFIG_PATH = "/etc/fieldrelay/config.toml";
const ENV_PREFIX = "FIELDRELAY_";
const SINK_ENV_PREFIX = "FIELDRELAY_SINK_";

/** ConfigProblem is one reason a config is unusable: where (key path or file) and why. */
export interface ConfigProblem {
  path: string;
  message: string;
}

/** ConfigError carries every problem found, so a person can fix them all in one go. */
export class ConfigError extends FieldrelayError {
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(
      `${file}: ${problems.length} problem${problems.length === 1 ? "" : "s"}:\n${formatProblems(problems)}`,
    );
  }
}

export function formatProblems(problems: ConfigProblem[]): string {
  return problems.map((p) => `  ${p.path}: ${p.message}`).join("\n");
}

export interface LoadOptions {
  path: string;
  env?: Record<string, string | undefined>;
}

/** Load, override and validate; throws ConfigError listing every problem. */
export function loadConfig({ path, env = process.env }: LoadOptions): Config {
  const raw = readConfigFile(path);
  const problems: ConfigProblem[] = [];
  if ((raw.mqtt as Record<string, unknown> | undefined)?.password !== undefined) {
    problems.push({
      path: "mqtt.password",
      message:
        "must not be stored in the config file; set FIELDRELAY_MQTT_PASSWORD in the environment (e.g. a systemd EnvironmentFile= readable only by root)",
    });
  }
  const fromEnv = applyEnvOverrides(raw, env, problems);
  try {
    return validateConfig(raw, path, problems);
  } catch (error) {
    // Name the variable, not the file, for a value that came from the environment.
    if (error instanceof ConfigError)
      for (const p of error.problems) {
        const name = fromEnv.get(p.path);
        if (name) p.path = `${p.path} (from environment variable ${name})`;
      }
    throw error instanceof ConfigError ? new ConfigError(path, error.problems) : error;
  }
}

/** Validate an already-parsed document (used by loadConfig and by config reload). */
export function validateConfig(
  raw: Record<string, unknown>,
  file: string,
  problems: ConfigProblem[] = [],
): Config {
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (!result.success) problems.push(...zodProblems(result.error, configSchema));
  const sensors = result.success ? result.data.sensor : Array.isArray(raw.sensor) ? raw.sensor : [];
  problems.push(...validateSensors(sensors));
  if (result.success) problems.push(...crossCheck(result.data));
  if (problems.length > 0 || !result.success) throw new ConfigError(file, problems);
  return result.data;
}

/** Read and parse a TOML config file; throws ConfigError naming the file, or the line and column. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const hint =
      code === "ENOENT"
        ? "create it (see deploy/config.example.toml) or pass --config PATH"
        : code === "EACCES"
          ? "run as a user that may read it, e.g. chgrp fieldrelay + chmod 640"
          : code === "EISDIR"
            ? "pass the path of the .toml file, not its directory"
            : "check the path and its permissions";
    const what = code === "ENOENT" ? "not found" : code === "EACCES" ? "permission denied" : "cannot be read";
    throw new ConfigError(path, [{ path, message: `${what} (${code ?? "error"}) — ${hint}` }]);
  }
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof TomlError) {
      const reason = error.message.split("\n")[0]!.replace(/^Invalid TOML document: /, "");
      throw new ConfigError(path, [
        {
          path: `${path}:${error.line}:${error.column}`,
          message: `invalid TOML: ${reason} (line ${error.line}, column ${error.column})`,
        },
      ]);
    }
    throw error;
  }
}

type Shape = Record<string, z.ZodType>;

/** Unwrap defaults, optionals and refinements down to the schema that says what a value is. */
function core(schema: z.ZodType): z.ZodType {
  let s = schema as unknown as { _zod: { def: { type: string; innerType?: z.ZodType; in?: z.ZodType } } };
  for (;;) {
    const def = s._zod.def;
    if (def.innerType && ["default", "prefault", "optional", "nullable", "readonly"].includes(def.type)) {
      s = def.innerType as never;
    } else if (def.type === "pipe" && def.in) {
      s = def.in as never;
    } else {
      return s as unknown as z.ZodType;
    }
  }
}

function shapeOf(schema: z.ZodType): Shape | undefined {
  const c = core(schema) as unknown as { _zod: { def: { type: string; shape?: Shape } } };
  return c._zod.def.type === "object" ? c._zod.def.shape : undefined;
}

function leafKind(schema: z.ZodType): "number" | "boolean" | "array" | "string" {
  const def = (
    core(schema) as unknown as { _zod: { def: { type: string; options?: z.ZodType[]; values?: unknown[] } } }
  )._zod.def;
  if (def.type === "number" || def.type === "int") return "number";
  if (def.type === "boolean") return "boolean";
  if (def.type === "array") return "array";
  if (def.type === "union" && def.options?.every((o) => leafKind(o) === "number")) return "number";
  if (def.type === "literal" && def.values?.every((v) => typeof v === "number")) return "number";
  return "string";
}

function coerce(value: string, kind: ReturnType<typeof leafKind>): unknown {
  switch (kind) {
    case "number":
      return value.trim() !== "" && Number.isFinite(Number(value)) ? Number(value) : value;
    case "boolean":
      return value === "true" || value === "1" ? true : value === "false" || value === "0" ? false : value;
    case "array":
      return value === "" ? [] : value.split(",").map((s) => s.trim());
    default:
      return value;
  }
}

/**
 * Every FIELDRELAY_* variable names one key: FIELDRELAY_MQTT_PASSWORD → mqtt.password,
 * FIELDRELAY_MQTT_TLS_CA → mqtt.tls.ca, FIELDRELAY_SHUTDOWN_TIMEOUT_S → shutdown_timeout_s.
 * Keys contain underscores too, so the name is matched against the schema, not split blindly.
 */
export function applyEnvOverrides(
  raw: Record<string, unknown>,
  env: LoadOptions["env"],
  problems: ConfigProblem[],
  schema: z.ZodType = configSchema as unknown as z.ZodType,
  prefix = ENV_PREFIX,
): Map<string, string> {
  const applied = new Map<string, string>();
  const targets = envTargets(schema, [], prefix);
  for (const [name, value] of Object.entries(env ?? {})) {
    if (!name.startsWith(prefix) || value === undefined) continue;
    // The fleet sink (src/sink) has its own file and its own FIELDRELAY_SINK_* variables.
    if (prefix === ENV_PREFIX && name.startsWith(SINK_ENV_PREFIX)) continue;
    const target = targets.get(name);
    if (!target) {
      const near = closest(name, [...targets.keys()]);
      problems.push({
        path: `env ${name}`,
        message: `unknown environment override${near ? ` (did you mean ${near}?)` : ""}`,
      });
      continue;
    }
    let node = raw;
    for (const key of target.path.slice(0, -1)) {
      const next = node[key];
      if (typeof next !== "object" || next === null || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[target.path.at(-1)!] = coerce(value, target.kind);
    applied.set(target.path.join("."), name);
  }
  return applied;
}

function envTargets(
  schema: z.ZodType,
  path: string[],
  prefix: string,
): Map<string, { path: string[]; kind: ReturnType<typeof leafKind> }> {
  const out = new Map<string, { path: string[]; kind: ReturnType<typeof leafKind> }>();
  const shape = shapeOf(schema);
  if (!shape) return out;
  for (const [key, child] of Object.entries(shape)) {
    if (path.length === 0 && key === "sensor") continue; // arrays of tables have no env form
    const childPath = [...path, key];
    if (shapeOf(child)) {
      for (const [k, v] of envTargets(child, childPath, prefix)) out.set(k, v);
    } else {
      out.set(prefix + childPath.join("_").toUpperCase(), { path: childPath, kind: leafKind(child) });
    }
  }
  return out;
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 4)) ? best : undefined;
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out === "" ? String(p) : `.${String(p)}`;
  return out || "(top level)";
}

function schemaAt(root: z.ZodType, path: ReadonlyArray<PropertyKey>): z.ZodType | undefined {
  let s: z.ZodType | undefined = root;
  for (const p of path) {
    if (!s) return undefined;
    const c = core(s) as unknown as { _zod: { def: { type: string; element?: z.ZodType; shape?: Shape } } };
    if (typeof p === "number") s = c._zod.def.element;
    else s = c._zod.def.shape?.[String(p)];
  }
  return s;
}

/** Turn zod issues into problems with key paths, type names people read, and did-you-mean. */
export function zodProblems(
  error: z.ZodError,
  root: z.ZodType,
  prefix: ReadonlyArray<PropertyKey> = [],
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of error.issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === "unrecognized_keys") {
      const known = Object.keys(shapeOf(schemaAt(root, issue.path) ?? root) ?? {});
      for (const key of issue.keys) {
        const near = closest(key, known);
        problems.push({
          path: formatPath([...path, key]),
          message: `unknown key${near ? ` (did you mean "${near}"?)` : ""}${known.length ? `; known keys here: ${known.join(", ")}` : ""}`,
        });
      }
      continue;
    }
    let message = issue.message;
    if (issue.code === "invalid_type") {
      const received = (issue as { input?: unknown }).input;
      message =
        received === undefined
          ? `required: expected ${issue.expected}`
          : typeof received === "number" && !Number.isFinite(received)
            ? `expected a finite number, got ${received}`
            : `expected ${issue.expected}, got ${Array.isArray(received) ? "array" : typeof received} ${JSON.stringify(received)}`;
    } else if (issue.code === "too_small" || issue.code === "too_big") {
      const input = (issue as { input?: unknown }).input;
      if (typeof input === "number") message = `${message}, got ${input}`;
    }
    problems.push({ path: formatPath(path), message });
  }
  return problems;
}

/**
 * Driver-specific keys are checked by the driver's own schema. Runs on the raw tables too when
 * the rest of the config failed, so one run reports every problem.
 */
function validateSensors(sensors: unknown[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const seen = new Map<string, number>();
  sensors.forEach((entry, index) => {
    if (typeof entry !== "object" || entry === null || typeof (entry as SensorConfig).driver !== "string")
      return;
    const sensor = entry as SensorConfig;
    const at = `sensor[${index}]`;
    const previous = seen.get(sensor.name);
    if (previous !== undefined) {
      problems.push({
        path: `${at}.name`,
        message: `"${sensor.name}" is already used by sensor[${previous}]; names must be unique`,
      });
    }
    seen.set(sensor.name, index);
    const schema = sensorOptionsSchema(sensor.driver);
    if (!schema) {
      const near = closest(sensor.driver, driverNames());
      problems.push({
        path: `${at}.driver`,
        message: `unknown driver "${sensor.driver}"${near ? ` (did you mean "${near}"?)` : ""}; known drivers: ${driverNames().join(", ")}`,
      });
      return;
    }
    const {
      name: _n,
      driver: _d,
      interval_s: _i,
      stream: _s,
      priority: _p,
      qos: _q,
      scale: _sc,
      offset: _o,
      ...rest
    } = sensor;
    const result = schema.safeParse(rest, { reportInput: true });
    if (!result.success) {
      problems.push(...zodProblems(result.error, schema, ["sensor", index]));
    } else {
      Object.assign(sensor, result.data);
    }
  });
  return problems;
}
