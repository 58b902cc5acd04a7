/**
 * The wire format of a reading: topic `<topic_prefix>/<device>/<stream>`, payload one JSON object
 *
 *   {"seq":42,"device":"pi-7","stream":"env","ts":"2026-01-02T03:04:05.678Z","tq":"ntp",
 *    "te_ms":12,"values":{"temperature_c":21.5},"anomaly":true,"time_note":"earlier boot, never anchored"}
 *
 * `te_ms` (always present) bounds the error of `ts`: the true time is within ts ± te_ms (rounded
 * up to whole ms). While the time can still improve — `tq` "unsynced" or "rtc" — the message also
 * carries `boot` (the boot_id) and `mono_ms` (CLOCK_MONOTONIC at capture, ms, 3 decimals), which is
 * what a consumer needs to re-stamp it from the clock message of that boot (src/wire/clock.ts).
 * `anomaly` appears only when true and `time_note` only when the clock model attached a note, so
 * the common message stays small. Consumers dedupe on (device, seq) and ignore unknown keys.
 *
 * The status topic `<topic_prefix>/<device>/status` carries the plain strings "online" (birth,
 * retained, on every connect) and "offline" (last will, and published on a clean shutdown), both
 * retained at QoS 1. Plain strings rather than JSON so the will, fixed at connect time, cannot
 * carry a stale timestamp and so shell tools (mosquitto_sub) can test it directly.
 */
import type { PublishStamp } from "../clock/types.ts";
import type { FieldValue, QueuedReading } from "../queue/types.ts";

export const STATUS_ONLINE = "online";
export const STATUS_OFFLINE = "offline";

export interface Envelope {
  seq: number;
  device: string;
  stream: string;
  ts: string;
  tq: PublishStamp["tq"];
  te_ms: number;
  boot?: string;
  mono_ms?: number;
  values: Record<string, FieldValue>;
  anomaly?: true;
  time_note?: string;
}

export function streamTopic(prefix: string, deviceId: string, stream: string): string {
  return `${prefix}/${deviceId}/${stream}`;
}

export function statusTopic(prefix: string, deviceId: string): string {
  return `${prefix}/${deviceId}/status`;
}

/** buildEnvelope is the message body for one reading, with the time the clock model gives at publish. */
export function buildEnvelope(reading: QueuedReading, deviceId: string, stamp: PublishStamp): Envelope {
  const envelope: Envelope = {
    seq: reading.seq,
    device: deviceId,
    stream: reading.stream,
    ts: new Date(stamp.wallMs).toISOString(),
    tq: stamp.tq,
    te_ms: Math.ceil(stamp.errMs),
    values: reading.values,
  };
  if (stamp.tq === "unsynced" || stamp.tq === "rtc") {
    envelope.boot = reading.bootId;
    envelope.mono_ms = Number(reading.monoNs / 1000n) / 1000;
  }
  if (reading.anomaly === true) envelope.anomaly = true;
  if (stamp.note !== undefined && stamp.note !== "") envelope.time_note = stamp.note;
  return envelope;
}

export function encodeEnvelope(envelope: Envelope): string {
  return JSON.stringify(envelope);
}
