/**
 * classifyMessage turns one MQTT message on the sink's subscriptions into what the writer stores:
 * readings (rows keyed by device and seq), a clock message, something to acknowledge and ignore
 * (the edge's own status and command topics), or a dead letter with the kind of problem. Pure: no
 * I/O, no clock, so every case is tested directly.
 *
 *   <prefix>/<device>/<stream>            readings (single envelope or batch, src/wire)
 *   <prefix>/<device>/clock/<boot_id>     clock anchors of one boot (CONTRACTS.md §2)
 *   <prefix>/<device>/status              "online"/"offline": ignored
 *   <prefix>/<device>/cmd/<name>          commands to the device: ignored
 *   anything else                         dead letter ("foreign-topic")
 */
import {
  type ClockMessage,
  ClockMessageError,
  type DecodedReading,
  decodeClockMessage,
  decodeReadings,
  type TimeQuality,
  WireFormatError,
} from "./wire.ts";

/** ReadingRow is one row of the readings table, in the shape the insert takes. */
export interface ReadingRow {
  device: string;
  seq: number;
  stream: string;
  tsMs: number;
  tq: TimeQuality;
  teMs: number | null;
  boot: string | null;
  monoMs: number | null;
  /** The values object as JSON text (stored as jsonb). */
  values: string;
  anomaly: boolean;
  timeNote: string | null;
}

export type DeadLetterKind =
  | "foreign-topic"
  | "malformed-reading"
  | "malformed-clock"
  | "device-mismatch"
  | "reserved-stream";

export type Classified =
  | { kind: "readings"; rows: ReadingRow[] }
  | { kind: "clock"; message: ClockMessage }
  | { kind: "ignored"; why: "status" | "cmd" }
  | { kind: "dead"; dead: DeadLetterKind; reason: string };

export function classifyMessage(
  prefix: string,
  topic: string,
  payload: Uint8Array,
  contentType?: string,
): Classified {
  if (!topic.startsWith(`${prefix}/`)) return dead("foreign-topic", `topic outside ${prefix}/`);
  const levels = topic.slice(prefix.length + 1).split("/");
  const device = levels[0] ?? "";
  if (device === "") return dead("foreign-topic", "empty device level");
  if (levels.length === 2 && levels[1] === "status") return { kind: "ignored", why: "status" };
  if (levels.length >= 2 && levels[1] === "cmd") return { kind: "ignored", why: "cmd" };
  if (levels.length === 3 && levels[1] === "clock") return clock(device, levels[2]!, payload);
  if (levels.length === 2 && levels[1] !== "") return readings(device, levels[1]!, payload, contentType);
  return dead("foreign-topic", `not <device>/<stream> or <device>/clock/<boot>`);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function dead(kind: DeadLetterKind, reason: string): Classified {
  return { kind: "dead", dead: kind, reason };
}

function readings(device: string, stream: string, payload: Uint8Array, contentType?: string): Classified {
  if (stream === "clock") return dead("reserved-stream", "a reading on the reserved stream name clock");
  let decoded: DecodedReading[];
  try {
    decoded = decodeReadings(payload, contentType);
  } catch (error) {
    if (error instanceof WireFormatError) return dead("malformed-reading", error.message);
    throw error;
  }
  const rows: ReadingRow[] = [];
  for (const r of decoded) {
    if (r.device !== device)
      return dead("device-mismatch", `payload device "${r.device}" on the topic of device "${device}"`);
    const tsMs = Date.parse(r.ts);
    if (!Number.isFinite(tsMs)) return dead("malformed-reading", `seq ${r.seq}: ts is not a time`);
    rows.push({
      device,
      seq: r.seq,
      stream: r.stream,
      tsMs,
      tq: r.tq,
      teMs: r.te_ms ?? null,
      boot: r.boot?.toLowerCase() ?? null,
      monoMs: r.mono_ms ?? null,
      values: JSON.stringify(r.values),
      anomaly: r.anomaly === true,
      timeNote: r.time_note ?? null,
    });
  }
  return { kind: "readings", rows };
}

function clock(device: string, boot: string, payload: Uint8Array): Classified {
  let message: ClockMessage;
  try {
    message = decodeClockMessage(payload);
  } catch (error) {
    if (error instanceof ClockMessageError) return dead("malformed-clock", error.message);
    throw error;
  }
  message.boot = message.boot.toLowerCase();
  if (!UUID.test(message.boot))
    return dead("malformed-clock", `boot "${message.boot}" is not a boot_id (uuid)`);
  if (message.device !== device)
    return dead("device-mismatch", `clock message of device "${message.device}" on the topic of "${device}"`);
  if (message.boot !== boot.toLowerCase())
    return dead("malformed-clock", `clock message of boot ${message.boot} on the topic of boot ${boot}`);
  return { kind: "clock", message };
}
