/**
 * The config schema: every option fieldrelay reads, its default and its validation. The names
 * are a stable interface (docs, packaging and tests use them); see shared DESIGN "Config surface".
 * Driver-specific [[sensor]] keys are validated by each driver's own schema in src/sensors.
 */
import { statSync } from "node:fs";
import * as z from "zod";
import { MAX_TOPIC_BYTES, mqttStringProblem, RESERVED_STREAMS } from "./names.ts";

const TOPIC_FORBIDDEN = ["+", "#", "/", "\0"];
const firstForbidden = (s: string) => [...s].findIndex((c) => TOPIC_FORBIDDEN.includes(c));

/** A single MQTT topic level: what a device id or a stream name must be. */
export const topicLevel = (what: string) =>
  z
    .string()
    .min(1, `${what} must not be empty`)
    .max(128, `${what} must be at most 128 characters`)
    .refine((s) => firstForbidden(s) < 0, {
      error: (issue) => {
        const s = String(issue.input);
        const at = firstForbidden(s);
        const shown = s[at] === "\0" ? "NUL" : `'${s[at]}'`;
        return `${what} must not contain '+', '#', '/' or NUL (they are MQTT wildcards and separators); found ${shown} at position ${at}`;
      },
    })
    .refine((s) => mqttStringProblem(s) === undefined, {
      error: (issue) =>
        `${what} must be a string MQTT can carry (no control characters, non-characters or unpaired surrogates); found ${mqttStringProblem(String(issue.input))}`,
    });

/** A stream name: a topic level that is not one of the device's own topics. */
export const streamName = (what = "stream") =>
  topicLevel(what).refine((s) => !RESERVED_STREAMS.has(s), {
    error: (issue) =>
      `${what} "${String(issue.input)}" is reserved for the device's own topics (${[...RESERVED_STREAMS].join(", ")}); choose another name`,
  });

/** "host:port" (IPv6 as "[::1]:port"), or "" to disable the listener. */
export const listenAddress = z.string().refine((s) => s === "" || parseListen(s) !== undefined, {
  error:
    'must be "host:port" (e.g. "127.0.0.1:9108", "[::1]:9108") with a port from 1 to 65535, or "" to disable',
});

export interface Listen {
  host: string;
  port: number;
}

export function parseListen(s: string): Listen | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

/**
 * Whether a host name or address only reaches this machine: "localhost", 127.0.0.0/8 in any form
 * the resolver accepts (127.1, 0x7f.1, 127.0.0.01), ::1 in any spelling, and IPv4-mapped
 * loopback (::ffff:127.0.0.1). Addresses are normalised by the WHATWG URL parser, as the
 * resolver would read them.
 */
export function isLoopback(host: string): boolean {
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (h.toLowerCase() === "localhost" || h.toLowerCase() === "localhost.") return true;
  try {
    if (h.includes(":")) {
      const v6 = new URL(`http://[${h}]`).hostname;
      return v6 === "[::1]" || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(v6);
    }
    return /^127\.\d+\.\d+\.\d+$/.test(new URL(`http://${h}`).hostname);
  } catch {
    return false;
  }
}

export const mqttUrl = z.string().refine(
  (s) => {
    try {
      const u = new URL(s);
      return ["mqtt:", "mqtts:", "ws:", "wss:"].includes(u.protocol) && u.hostname !== "";
    } catch {
      return false;
    }
  },
  {
    error:
      'must be a URL with scheme mqtt://, mqtts://, ws:// or wss:// and a host, e.g. "mqtts://broker.example:8883"',
  },
);

const int = (min: number, max: number) => z.int().min(min).max(max);
const priority = int(1, 10);
const qos = z.union([z.literal(0), z.literal(1), z.literal(2)], { error: "must be 0, 1 or 2" });

export const tls = z
  .strictObject({
    ca: z.string().min(1).optional(),
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    insecure: z.boolean().default(false),
    alpn: z.array(z.string().min(1)).default([]),
    servername: z.string().min(1).optional(),
  })
  .refine((t) => (t.cert === undefined) === (t.key === undefined), {
    error: "cert and key go together for mutual TLS: set both or neither",
    path: ["cert"],
  });

/** [mqtt.batch]: many readings of one stream per message (src/publish/batcher.ts, README "Batch format"). */
const batch = z.strictObject({
  enabled: z.boolean().default(false),
  max_readings: int(2, 10_000).default(500),
  max_bytes: int(1024, 16 * 1024 * 1024).default(256 * 1024),
  max_delay_ms: int(0, 3_600_000).default(500),
  alone_priority: int(1, 11).default(11),
});

/** topicPrefix: a topic prefix MQTT can carry and a subscription filter cannot misread. */
export const topicPrefix = z
  .string()
  .min(1)
  .refine((s) => !/[+#]/.test(s) && !s.includes("\0") && !s.startsWith("/") && !s.endsWith("/"), {
    error: "must not contain '+', '#' or NUL, nor start or end with '/'",
  })
  .refine((s) => mqttStringProblem(s) === undefined, {
    error: (issue) =>
      `must be a string MQTT can carry (no control characters, non-characters or unpaired surrogates); found ${mqttStringProblem(String(issue.input))}`,
  })
  .refine((s) => Buffer.byteLength(s) <= MAX_TOPIC_BYTES - 1024, {
    error: `must be at most ${MAX_TOPIC_BYTES - 1024} bytes (MQTT topics end at ${MAX_TOPIC_BYTES})`,
  });

const mqtt = z
  .strictObject({
    url: mqttUrl.default("mqtt://127.0.0.1:1883"),
    topic_prefix: topicPrefix.default("fieldrelay"),
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    // Unset: MQTT 5 (the broker can say it refused a message), falling back to 3.1.1 once if the
    // broker does not speak 5 (see src/publish/session.ts). Set, it is used as is.
    protocol_version: z
      .union([z.literal(4), z.literal(5)], { error: "must be 4 (MQTT 3.1.1) or 5 (MQTT 5)" })
      .optional(),
    client_id: z.string().min(1).max(65535).optional(),
    keepalive_s: int(5, 3600).default(30),
    min_backoff_s: z.number().min(0.1).max(3600).default(1),
    max_backoff_s: z.number().min(1).max(86400).default(60),
    stable_after_s: z.number().min(1).max(3600).default(30),
    max_inflight: int(1, 65535).default(64),
    max_rate: z.number().min(0).max(100000).default(0),
    max_rate_bytes: int(0, 1_000_000_000).default(0),
    message_expiry_s: int(0, 4294967295).default(0),
    tls: tls.prefault({}),
    batch: batch.prefault({}),
  })
  .refine((m) => m.min_backoff_s <= m.max_backoff_s, {
    error: "min_backoff_s must not be greater than max_backoff_s",
    path: ["min_backoff_s"],
  });

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

const queue = z.strictObject({
  // The one check here that looks at the filesystem: a directory at queue.path would otherwise
  // only be found by `run` (which refuses it, exit 73); check-config should say so first.
  path: z
    .string()
    .min(1)
    .refine((p) => !p.endsWith("/") && !isDirectory(p), {
      error: "is a directory; set it to a file inside it, e.g. /var/lib/fieldrelay/queue.db",
    })
    .default("/var/lib/fieldrelay/queue.db"),
  durability: z.enum(["full", "normal"], { error: 'must be "full" or "normal"' }).default("full"),
  commit_interval_ms: int(0, 60_000).default(1000),
  // Ingest's gathering window: the longest a 201 waits for a commit when the broker has not acked
  // the readings first (README "Delivery contract"; the default is measured there).
  ingest_commit_ms: int(0, 60_000).default(200),
  commit_max_rows: int(1, 100_000).default(1000),
  max_rows: int(100, 100_000_000).default(1_000_000),
  max_bytes: int(65_536, 2 ** 45).default(512 * 1024 * 1024),
  min_free_disk_mb: int(0, 1_000_000).default(64),
  protected_priority: int(1, 11).default(9),
});

const sensorBase = z
  .looseObject({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 characters of letters, digits, '_' or '-'"),
    driver: z.string().min(1),
    interval_s: z.number().min(0.01).max(86_400).default(10),
    stream: streamName().optional(),
    priority: priority.default(5),
    qos: qos.default(1),
    scale: z.record(z.string(), z.number()).default({}),
    offset: z.record(z.string(), z.number()).default({}),
  })
  .refine((sensor) => sensor.stream !== undefined || !RESERVED_STREAMS.has(sensor.name), {
    error: (issue) =>
      `the sensor's stream defaults to its name, and "${String((issue.input as { name?: unknown }).name)}" is reserved for the device's own topics; set stream = "…" to another name`,
    path: ["stream"],
  });

export const configSchema = z.strictObject({
  device: z.strictObject({ id: topicLevel("device id") }),
  mqtt: mqtt.prefault({}),
  queue: queue.prefault({}),
  ingest: z
    .strictObject({
      listen: listenAddress.default("127.0.0.1:9107"),
      max_body_bytes: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
      /** Required when listen is not loopback (FIELDRELAY_INGEST_TOKEN). */
      token: z.string().min(16, "must be at least 16 characters").optional(),
    })
    .prefault({}),
  health: z
    .strictObject({
      listen: listenAddress.default("127.0.0.1:9108"),
      token: z.string().min(16, "must be at least 16 characters").optional(),
    })
    .prefault({}),
  clock: z
    .strictObject({
      sync_source: z
        .string()
        .refine((s) => s === "adjtimex" || /^file:.+/.test(s), {
          error: 'must be "adjtimex" or "file:<path>" (e.g. "file:/run/systemd/timesync/synchronized")',
        })
        .default("adjtimex"),
      anchor_interval_s: int(10, 86_400).default(600),
    })
    .prefault({}),
  rtc: z
    .strictObject({
      mode: z
        .enum(["auto", "kernel", "i2c", "none"], { error: 'must be "auto", "kernel", "i2c" or "none"' })
        .default("auto"),
      bus: int(0, 255).default(1),
      address: int(0x03, 0x77).default(0x68),
      max_drift_ms: int(1, 3_600_000).default(2000),
    })
    .prefault({}),
  system: z.strictObject({ root: z.string().min(1).default("/") }).prefault({}),
  commands: z
    .strictObject({
      enabled: z.boolean().default(false),
      max_payload_bytes: int(16, 1024 * 1024).default(4096),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(["trace", "debug", "info", "warn", "error", "fatal"]).default("info"),
    })
    .prefault({}),
  shutdown_timeout_s: z.number().min(0).max(3600).default(20),
  sensor: z.array(sensorBase).default([]),
});

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type SensorConfig = Config["sensor"][number];
