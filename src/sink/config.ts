/**
 * The sink's config: its own TOML file (default /etc/fieldrelay/sink.toml), every key overridable
 * as FIELDRELAY_SINK_<SECTION>_<KEY>. Passwords come from the environment only
 * (FIELDRELAY_SINK_MQTT_PASSWORD, FIELDRELAY_SINK_POSTGRES_PASSWORD): a password in the file or in
 * postgres.url is refused. Loading never exits or prints; the CLI decides.
 */
import { hostname } from "node:os";
import * as z from "zod";
import {
  applyEnvOverrides,
  ConfigError,
  type ConfigProblem,
  listenAddress,
  mqttUrl,
  readConfigFile,
  tlsSchema,
  topicLevel,
  topicPrefix,
  zodProblems,
} from "../config/index.ts";

import { postgresTlsProblems, unreadableFiles } from "./postgres-tls.ts";

export const DEFAULT_SINK_CONFIG_PATH = "/etc/fieldrelay/sink.toml";
export const SINK_ENV_PREFIX = "FIELDRELAY_SINK_";

const int = (min: number, max: number) => z.int().min(min).max(max);

const postgresUrl = z.string().refine(
  (s) => {
    try {
      const u = new URL(s);
      return (u.protocol === "postgres:" || u.protocol === "postgresql:") && u.hostname !== "";
    } catch {
      return false;
    }
  },
  { error: 'must be a URL like "postgres://fieldrelay@db.example:5432/fleet"' },
);

/** A table name PostgreSQL takes unquoted: the sink also names <table>_clock and friends after it. */
const tableName = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,39}$/, "must be 1-40 characters of a-z, 0-9 and '_', not starting with a digit");

export const sinkConfigSchema = z.strictObject({
  mqtt: z
    .strictObject({
      url: mqttUrl.default("mqtt://127.0.0.1:1883"),
      topic_prefix: topicPrefix.default("fieldrelay"),
      username: z.string().min(1).optional(),
      password: z.string().min(1).optional(),
      client_id: z.string().min(1).max(256).default(`fieldrelay-sink-${hostname()}`),
      /** "" subscribes without sharing: every sink takes every reading (see README "Scale"). */
      share_group: z.union([z.literal(""), topicLevel("share group")]).default("fieldrelay-sink"),
      session_expiry_s: int(0, 4294967295).default(7 * 24 * 3600),
      keepalive_s: int(5, 3600).default(30),
      reconnect_s: z.number().min(0.1).max(3600).default(2),
      tls: tlsSchema.prefault({}),
    })
    .prefault({}),
  postgres: z
    .strictObject({
      url: postgresUrl.default("postgres://fieldrelay@127.0.0.1:5432/fieldrelay"),
      password: z.string().min(1).optional(),
      table: tableName.default("readings"),
      tls: z.enum(["disable", "prefer", "require", "verify-full"]).default("prefer"),
      /** PEM files: the CA that signed the server's certificate; a client certificate and its key. */
      ca: z.string().min(1).optional(),
      cert: z.string().min(1).optional(),
      key: z.string().min(1).optional(),
      connect_timeout_s: int(1, 600).default(10),
    })
    .prefault({}),
  sink: z
    .strictObject({
      commit_interval_ms: int(0, 60_000).default(100),
      batch_size: int(1, 100_000).default(2000),
      max_pending: int(1, 65_535).default(8000),
      retry_s: z.number().min(0.1).max(600).default(2),
    })
    .prefault({}),
  health: z
    .strictObject({
      listen: listenAddress.default("127.0.0.1:9110"),
      token: z.string().min(16, "must be at least 16 characters").optional(),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(["trace", "debug", "info", "warn", "error", "fatal"]).default("info"),
    })
    .prefault({}),
});

export type SinkConfig = z.output<typeof sinkConfigSchema>;
export type SinkConfigInput = z.input<typeof sinkConfigSchema>;

export interface LoadSinkOptions {
  path: string;
  env?: Record<string, string | undefined>;
}

/** Load, override and validate the sink config; throws ConfigError listing every problem. */
export function loadSinkConfig({ path, env = process.env }: LoadSinkOptions): SinkConfig {
  const raw = readConfigFile(path);
  const problems: ConfigProblem[] = [];
  const section = (name: string) => raw[name] as Record<string, unknown> | undefined;
  for (const key of ["mqtt", "postgres"]) {
    if (section(key)?.password !== undefined) {
      problems.push({
        path: `${key}.password`,
        message: `must not be stored in the config file; set ${SINK_ENV_PREFIX}${key.toUpperCase()}_PASSWORD in the environment (e.g. a systemd EnvironmentFile= readable only by root)`,
      });
    }
  }
  const url = section("postgres")?.url;
  if (typeof url === "string" && passwordIn(url)) {
    problems.push({
      path: "postgres.url",
      message: `must not contain a password; set ${SINK_ENV_PREFIX}POSTGRES_PASSWORD in the environment`,
    });
  }
  applyEnvOverrides(raw, env, problems, sinkConfigSchema as unknown as z.ZodType, SINK_ENV_PREFIX);
  return validateSinkConfig(raw, path, problems);
}

export function validateSinkConfig(
  raw: Record<string, unknown>,
  file: string,
  problems: ConfigProblem[] = [],
): SinkConfig {
  const result = sinkConfigSchema.safeParse(raw, { reportInput: true });
  if (!result.success) problems.push(...zodProblems(result.error, sinkConfigSchema as unknown as z.ZodType));
  else
    problems.push(
      ...postgresTlsProblems(result.data.postgres),
      ...unreadableFiles("mqtt.tls", {
        ca: result.data.mqtt.tls.ca,
        cert: result.data.mqtt.tls.cert,
        key: result.data.mqtt.tls.key,
      }),
    );
  if (problems.length > 0 || !result.success) throw new ConfigError(file, problems);
  return result.data;
}

function passwordIn(url: string): boolean {
  try {
    return new URL(url).password !== "";
  } catch {
    return false;
  }
}

/** A copy safe to print or log. */
export function redactSinkConfig(config: SinkConfig): SinkConfig {
  const copy = structuredClone(config);
  if (copy.mqtt.password !== undefined) copy.mqtt.password = "[redacted]";
  if (copy.postgres.password !== undefined) copy.postgres.password = "[redacted]";
  if (copy.health.token !== undefined) copy.health.token = "[redacted]";
  return copy;
}
