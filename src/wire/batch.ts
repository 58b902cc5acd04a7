/**
 * The batch format: many readings of ONE device and ONE stream in one MQTT message, published on
 * the stream's own topic `<topic_prefix>/<device>/<stream>` (so per-stream subscriptions and
 * broker ACLs keep meaning what they meant for single readings).
 *
 * Payload = zlib (RFC 1950: deflate with a 2-byte header and an Adler-32 trailer; Python's
 * zlib.decompress, Node's inflateSync, Go's compress/zlib) of UTF-8 JSON:
 *
 *   {"v":1,"bseq":100042,"bt":1764460000123,"bmono_us":123456789,
 *    "base":{"device":"pi-7","stream":"env","tq":"unsynced","boot":"3f1c…"},
 *    "readings":[{"ds":0,"dt":0,"dm":0,"te_ms":1000,"values":{"temperature_c":21.5}},
 *                {"ds":1,"dt":10002,"dm":10002347,…}]}
 *
 * Decode rule (the whole of it; README "Batch format" has it in Python):
 *   seq = bseq; t = bt; mono_us = bmono_us (0 when absent)
 *   for each record r in readings, in order:
 *     seq += r.ds; t += r.dt; reading = base ∪ (r without ds/dt/dm)
 *     reading.seq = seq; reading.ts = ISO 8601 UTC of t ms (e.g. 2026-01-02T03:04:05.678Z)
 *     if r has dm: mono_us += r.dm; reading.mono_ms = mono_us / 1000
 * Each reading then has exactly the fields of the single-reading envelope (src/publish/envelope.ts).
 *
 * Like SenML (RFC 8428) base fields, values shared by every reading are stated once ("base" holds
 * every envelope field with a primitive value that is the same in all readings), and time is a base time plus
 * offsets. Where it departs, and why:
 *   - one record per reading carrying its whole `values` object, not one record per value: a
 *     reading's seq is what consumers dedupe on, so a reading must stay one unit;
 *   - bt and dt are integer milliseconds (SenML: seconds, float), so the decode is exact integer
 *     arithmetic and matches the envelope's millisecond ts;
 *   - ds/dt/dm are offsets from the PREVIOUS record (SenML's t is from bt): readings at a steady
 *     interval then repeat the same bytes, which deflate turns into back-references (measured on
 *     the simulated profiles: about 35% fewer bytes than offsets from the base);
 *   - seq and CLOCK_MONOTONIC (µs) are chained the same way; SenML has neither.
 * mono_ms travels as `dm` only when it has at most 3 decimals (µs are exact integers); otherwise
 * it stays in the record as `mono_ms`, which the merge rule carries over unchanged.
 *
 * zlib, not zstd: on the simulated profiles zlib and zstd (level 3) are within 5% of each other
 * for this layout (zlib usually smaller), and zlib is in every language's standard library
 * (Python's zstd arrived only in 3.14).
 *
 * Which is which: with MQTT 5 a batch carries content type BATCH_CONTENT_TYPE. Without it (MQTT
 * 3.1.1) the first byte tells: a single envelope starts with "{", a zlib stream with 0x78.
 */
import { deflateSync, inflateSync } from "node:zlib";
import { WireFormatError } from "./errors.ts";
import { checkReading, type DecodedReading, isoToMs, isPlainObject } from "./reading.ts";

export const BATCH_VERSION = 1;
/** MQTT 5 content type of a batch. */
export const BATCH_CONTENT_TYPE = "application/vnd.fieldrelay.batch.v1+json+zlib";
/** The most a batch may inflate to; a bigger one is refused (a zip bomb, not a batch). */
export const MAX_BATCH_JSON_BYTES = 64 * 1024 * 1024;
/**
 * deflate level 6 (zlib's default): level 9 is 7% smaller on these payloads but 4.5 times slower
 * (8.4 µs instead of 1.8 µs per reading on the CI machine), which a backlog drain on a Pi feels.
 */
const LEVEL = 6;

/** Fields the format derives from the deltas: never in `base` nor in a record. */
const DERIVED = new Set(["seq", "ts"]);
const DELTAS = new Set(["ds", "dt", "dm"]);

/** A reading to encode: the single envelope's fields (an Envelope from src/publish satisfies it). */
export interface EncodableReading {
  seq: number;
  device: string;
  stream: string;
  ts: string;
}

/** µs of a mono_ms that has at most 3 decimals, else undefined (it then travels verbatim). */
function exactMicros(monoMs: unknown): number | undefined {
  if (typeof monoMs !== "number") return undefined;
  const us = Math.round(monoMs * 1000);
  return Number.isSafeInteger(us) && us / 1000 === monoMs ? us : undefined;
}

type Primitive = string | number | boolean | null;

function isPrimitive(x: unknown): x is Primitive {
  return x === null || typeof x === "string" || typeof x === "number" || typeof x === "boolean";
}

/**
 * encodeBatchJson builds the batch object (before compression). Readings must share device and
 * stream; they are written in seq order. Only fields with a primitive value that is the same in
 * every reading go to `base` (objects, such as values, stay with their reading). Throws
 * WireFormatError on readings it cannot represent exactly (a caller's bug, not a runtime condition).
 * Written for speed: it runs for every reading a draining backlog sends.
 */
export function encodeBatchJson(
  readings: readonly EncodableReading[],
  options: EncodeOptions = {},
): Record<string, unknown> {
  const n = readings.length;
  if (n === 0) throw new WireFormatError("batch", "a batch needs at least one reading");
  const given = options.timesMs;
  if (given && given.length !== n)
    throw new WireFormatError("batch", "timesMs must have one time per reading");
  let inOrder = true;
  for (let i = 1; i < n && inOrder; i++) inOrder = readings[i - 1]!.seq < readings[i]!.seq;
  let order: number[] | undefined;
  if (!inOrder) order = [...readings.keys()].sort((a, b) => readings[a]!.seq - readings[b]!.seq);
  const sorted = (order ? order.map((i) => readings[i]!) : readings) as unknown as ReadonlyArray<
    EncodableReading & Record<string, unknown>
  >;
  const first = sorted[0]!;
  const base = new Map<string, Primitive>();
  for (const key in first) {
    const value = first[key];
    if (!DERIVED.has(key) && key !== "mono_ms" && isPrimitive(value)) base.set(key, value);
  }
  const times = new Array<number>(n);
  const micros = new Array<number | undefined>(n);
  let firstMicros: number | undefined;
  for (let i = 0; i < n; i++) {
    const r = sorted[i]!;
    if (r.device !== first.device || r.stream !== first.stream)
      throw new WireFormatError(
        "batch",
        `readings of ${first.device}/${first.stream} and ${r.device}/${r.stream} mixed`,
      );
    const ms = given ? given[order ? order[i]! : i] : isoToMs(r.ts);
    if (ms === undefined) throw new WireFormatError(`seq ${r.seq}.ts`, `not a canonical ISO time: ${r.ts}`);
    times[i] = ms;
    const us = exactMicros(r.mono_ms);
    micros[i] = us;
    if (firstMicros === undefined) firstMicros = us;
    for (const [key, value] of base) if (r[key] !== value) base.delete(key);
  }
  const out: Record<string, unknown> = { v: BATCH_VERSION, bseq: first.seq, bt: times[0] };
  if (firstMicros !== undefined) out.bmono_us = firstMicros;
  out.base = Object.fromEntries(base);
  const records = new Array<Record<string, unknown>>(n);
  let seq = first.seq;
  let t = times[0]!;
  let mono = firstMicros ?? 0;
  for (let i = 0; i < n; i++) {
    const r = sorted[i]!;
    const rec: Record<string, unknown> = { ds: r.seq - seq, dt: times[i]! - t };
    seq = r.seq;
    t = times[i]!;
    const us = micros[i];
    if (us !== undefined) {
      rec.dm = us - mono;
      mono = us;
    }
    for (const key in r) {
      const value = r[key];
      if (value === undefined || DERIVED.has(key) || base.has(key)) continue;
      if (DELTAS.has(key)) throw new WireFormatError(`seq ${r.seq}.${key}`, "reserved by the batch format");
      if (key === "mono_ms" && us !== undefined) continue;
      rec[key] = value;
    }
    records[i] = rec;
  }
  out.readings = records;
  return out;
}

export interface EncodeOptions {
  /**
   * Each reading's ts in ms since the epoch, when the caller has it (the publisher does): saves
   * parsing ts back. It must be the instant ts names; the decoder writes ts from it.
   */
  timesMs?: readonly number[];
}

/** encodeBatch is the MQTT payload for readings of one device and stream (see the format above). */
export function encodeBatch(readings: readonly EncodableReading[], options: EncodeOptions = {}): Uint8Array {
  return compressBatch(JSON.stringify(encodeBatchJson(readings, options)));
}

/** The payload of a batch whose JSON text is already written (the publisher's encoder writes it directly). */
export function compressBatch(json: string): Buffer {
  return deflateSync(json, { level: LEVEL });
}

/** True when the payload starts with a zlib header (RFC 1950: CM 8, a window ≤ 32K, header check). */
export function looksLikeZlib(payload: Uint8Array): boolean {
  if (payload.length < 2) return false;
  const cmf = payload[0]!;
  return (cmf & 0x0f) === 8 && cmf >> 4 <= 7 && ((cmf << 8) | payload[1]!) % 31 === 0;
}

function need<T>(ok: boolean, what: string, detail: string, value: T): T {
  if (!ok) throw new WireFormatError(what, detail);
  return value;
}

/** decodeBatch inflates and expands a batch into its readings (throws WireFormatError on anything else). */
export function decodeBatch(payload: Uint8Array): DecodedReading[] {
  let text: string;
  try {
    text = inflateSync(payload, { maxOutputLength: MAX_BATCH_JSON_BYTES }).toString("utf8");
  } catch (error) {
    throw new WireFormatError("zlib stream", (error as Error).message, error);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new WireFormatError("batch JSON", (error as Error).message, error);
  }
  return expandBatch(doc);
}

/** expandBatch applies the decode rule to an already parsed batch object. */
export function expandBatch(doc: unknown): DecodedReading[] {
  if (!isPlainObject(doc)) throw new WireFormatError("batch", "not a JSON object");
  need(
    doc.v === BATCH_VERSION,
    "batch.v",
    `unsupported batch version ${JSON.stringify(doc.v)} (this decoder reads ${BATCH_VERSION})`,
    0,
  );
  const int = (x: unknown, what: string) =>
    need(Number.isSafeInteger(x), what, "must be an integer", x as number);
  let seq = int(doc.bseq, "batch.bseq");
  let t = int(doc.bt, "batch.bt");
  let mono = doc.bmono_us === undefined ? 0 : int(doc.bmono_us, "batch.bmono_us");
  const base = need(
    isPlainObject(doc.base),
    "batch.base",
    "must be a JSON object",
    doc.base as Record<string, unknown>,
  );
  for (const key of Object.keys(base))
    need(
      !DERIVED.has(key) && !DELTAS.has(key),
      `batch.base.${key}`,
      "is derived from the offsets, not allowed in base",
      0,
    );
  const records = need(
    Array.isArray(doc.readings),
    "batch.readings",
    "must be an array",
    doc.readings as unknown[],
  );
  need(records.length > 0, "batch.readings", "is empty", 0);
  return records.map((rec, i) => {
    const where = `batch.readings[${i}]`;
    if (!isPlainObject(rec)) throw new WireFormatError(where, "not a JSON object");
    seq += int(rec.ds, `${where}.ds`);
    t += int(rec.dt, `${where}.dt`);
    const reading: Record<string, unknown> = { ...base };
    for (const [key, value] of Object.entries(rec)) {
      if (DELTAS.has(key)) continue;
      need(!DERIVED.has(key), `${where}.${key}`, "is derived from the offsets, not allowed in a record", 0);
      reading[key] = value;
    }
    reading.seq = seq;
    const date = new Date(t);
    need(Number.isFinite(date.getTime()), `${where}.dt`, "time out of range", 0);
    reading.ts = date.toISOString();
    if (rec.dm !== undefined) {
      mono += int(rec.dm, `${where}.dm`);
      reading.mono_ms = mono / 1000;
    }
    return checkReading(reading, where);
  });
}
