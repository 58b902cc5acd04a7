/**
 * The publisher's batch encoder: readings of one stream, each with the stamp it is published
 * with, straight to the batch JSON text (src/wire/batch.ts has the format), without building an
 * envelope object per reading, a batch object, or the single envelope's ISO time.
 *
 * It writes exactly the text `JSON.stringify(encodeBatchJson(readings.map(buildEnvelope)))`
 * writes — the same keys in the same order, the same base/record split — so the format and its
 * decode rule are defined in one place (batch.ts) and this is only a faster way to write them.
 * test/unit/publish-batch-encode.test.ts checks the two byte for byte; a field added to
 * buildEnvelope (envelope.ts) must be added here too, or that test fails.
 *
 * Why: a batched drain spent about 1.5 µs per reading building, stringifying and re-splitting
 * envelopes (measured at 100 000 readings: envelope 0.36, its JSON 0.45, encodeBatchJson 0.36,
 * JSON.stringify of the batch 0.34) — as much as mqtt.js needs for a whole message.
 */
import type { PublishStamp } from "../clock/types.ts";
import type { QueuedReading } from "../queue/types.ts";
import { BATCH_VERSION } from "../wire/index.ts";

/** One reading as the batcher holds it: the stamp it goes out with and its values as JSON. */
export interface StampedReading {
  reading: QueuedReading;
  stamp: PublishStamp;
  /** JSON.stringify(reading.values), written once. */
  valuesJson: string;
}

/** The stamp's te_ms (what buildEnvelope writes). */
function teMs(stamp: PublishStamp): number {
  return Math.ceil(stamp.errMs);
}

/** buildEnvelope's boot/mono_ms rule: present while the time can still improve. */
function carriesMono(stamp: PublishStamp): boolean {
  return stamp.tq === "unsynced" || stamp.tq === "rtc";
}

function monoMsOf(reading: QueuedReading): number {
  return Number(reading.monoNs / 1000n) / 1000;
}

/** µs of a mono_ms with at most 3 decimals, else undefined (batch.ts's exactMicros). */
function exactMicros(monoMs: number): number | undefined {
  const us = Math.round(monoMs * 1000);
  return Number.isSafeInteger(us) && us / 1000 === monoMs ? us : undefined;
}

function note(stamp: PublishStamp): string | undefined {
  return stamp.note !== undefined && stamp.note !== "" ? stamp.note : undefined;
}

const ISO_LENGTH = 24; // "2026-01-02T03:04:05.678Z" (years 0–9999)

/**
 * The length of the single envelope's JSON (encodeEnvelope(buildEnvelope(…))) for this reading,
 * from its parts: what max_bytes budgets, without writing the envelope.
 */
export function envelopeLength(deviceJson: string, item: StampedReading, streamJson: string): number {
  const { reading, stamp } = item;
  let n =
    `{"seq":,"device":,"stream":,"ts":"","tq":,"te_ms":,"values":}`.length +
    String(reading.seq).length +
    deviceJson.length +
    streamJson.length +
    ISO_LENGTH +
    stamp.tq.length +
    2 +
    String(teMs(stamp)).length +
    item.valuesJson.length;
  if (carriesMono(stamp))
    n +=
      `,"boot":,"mono_ms":`.length + JSON.stringify(reading.bootId).length + String(monoMsOf(reading)).length;
  if (reading.anomaly === true) n += `,"anomaly":true`.length;
  const text = note(stamp);
  if (text !== undefined) n += `,"time_note":`.length + JSON.stringify(text).length;
  return n;
}

/**
 * The batch JSON text of `items` (one device and stream; any order, written in seq order):
 * exactly JSON.stringify(encodeBatchJson(items' envelopes)).
 */
export function encodeStampedBatch(deviceId: string, items: readonly StampedReading[]): string {
  const n = items.length;
  let sorted = items;
  for (let i = 1; i < n; i++) {
    if (items[i - 1]!.reading.seq > items[i]!.reading.seq) {
      sorted = [...items].sort((a, b) => a.reading.seq - b.reading.seq);
      break;
    }
  }
  const first = sorted[0]!;
  const r0 = first.reading;
  const s0 = first.stamp;
  // Base fields: those of the first envelope that every envelope has with the same value.
  const tq0 = s0.tq;
  const te0 = teMs(s0);
  const mono0 = carriesMono(s0);
  const boot0 = r0.bootId;
  const note0 = note(s0);
  const anomaly0 = r0.anomaly === true;
  let baseTq = true;
  let baseTe = true;
  let baseBoot = mono0;
  let baseAnomaly = anomaly0;
  let baseNote = note0 !== undefined;
  let firstMicros: number | undefined;
  const micros = new Array<number | undefined>(n);
  const monoMs = new Array<number | undefined>(n);
  for (let i = 0; i < n; i++) {
    const { reading, stamp } = sorted[i]!;
    if (reading.stream !== r0.stream) throw new Error(`readings of ${r0.stream} and ${reading.stream} mixed`);
    if (stamp.tq !== tq0) baseTq = false;
    if (teMs(stamp) !== te0) baseTe = false;
    const mono = carriesMono(stamp);
    if (baseBoot && (!mono || reading.bootId !== boot0)) baseBoot = false;
    if (baseAnomaly && reading.anomaly !== true) baseAnomaly = false;
    if (baseNote && note(stamp) !== note0) baseNote = false;
    if (mono) {
      const ms = monoMsOf(reading);
      monoMs[i] = ms;
      const us = exactMicros(ms);
      micros[i] = us;
      if (firstMicros === undefined) firstMicros = us;
    }
  }
  const parts: string[] = [
    `{"v":${BATCH_VERSION},"bseq":${r0.seq},"bt":${s0.wallMs}`,
    firstMicros !== undefined ? `,"bmono_us":${firstMicros}` : "",
    `,"base":{"device":${JSON.stringify(deviceId)},"stream":${JSON.stringify(r0.stream)}`,
    baseTq ? `,"tq":${JSON.stringify(tq0)}` : "",
    baseTe ? `,"te_ms":${te0}` : "",
    baseBoot ? `,"boot":${JSON.stringify(boot0)}` : "",
    baseAnomaly ? `,"anomaly":true` : "",
    baseNote ? `,"time_note":${JSON.stringify(note0)}` : "",
    `},"readings":[`,
  ];
  let seq = r0.seq;
  let t = s0.wallMs;
  let mono = firstMicros ?? 0;
  for (let i = 0; i < n; i++) {
    const { reading, stamp, valuesJson } = sorted[i]!;
    let rec = `${i === 0 ? "" : ","}{"ds":${reading.seq - seq},"dt":${stamp.wallMs - t}`;
    seq = reading.seq;
    t = stamp.wallMs;
    const us = micros[i];
    if (us !== undefined) {
      rec += `,"dm":${us - mono}`;
      mono = us;
    }
    if (!baseTq) rec += `,"tq":${JSON.stringify(stamp.tq)}`;
    if (!baseTe) rec += `,"te_ms":${teMs(stamp)}`;
    rec += `,"values":${valuesJson}`;
    const ms = monoMs[i];
    if (ms !== undefined) {
      if (!baseBoot) rec += `,"boot":${JSON.stringify(reading.bootId)}`;
      if (us === undefined) rec += `,"mono_ms":${ms}`;
    }
    if (!baseAnomaly && reading.anomaly === true) rec += `,"anomaly":true`;
    const text = note(stamp);
    if (!baseNote && text !== undefined) rec += `,"time_note":${JSON.stringify(text)}`;
    parts.push(`${rec}}`);
  }
  parts.push("]}");
  return parts.join("");
}
