/**
 * DecodedReading is one reading as a consumer sees it: exactly the fields of the single-reading
 * JSON envelope (src/publish/envelope.ts, README "Wire format"), whether it arrived alone or in a
 * batch. checkReading validates one; it is the only place that knows which fields are required.
 *
 * Unknown keys are kept (consumers ignore them), so a newer publisher's fields survive decoding.
 */
import { WireFormatError } from "./errors.ts";

export type WireValue = number | string | boolean;
export type WireTimeQuality = "ntp" | "rtc" | "unsynced" | "corrected";

export interface DecodedReading {
  seq: number;
  device: string;
  stream: string;
  /** ISO 8601 UTC with milliseconds, as Date.prototype.toISOString writes it. */
  ts: string;
  tq: WireTimeQuality;
  values: Record<string, WireValue>;
  /** Error bound of ts in ms (the time helper's field; optional for older publishers). */
  te_ms?: number;
  /** boot_id of the capture and CLOCK_MONOTONIC at capture in ms: present while the time can improve. */
  boot?: string;
  mono_ms?: number;
  anomaly?: true;
  time_note?: string;
  [extra: string]: unknown;
}

const TIME_QUALITIES: ReadonlySet<string> = new Set(["ntp", "rtc", "unsynced", "corrected"]);
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** Canonical ts → ms since the epoch, or undefined when ts is not exactly what toISOString writes. */
export function isoToMs(ts: string): number | undefined {
  if (!ISO_MS.test(ts)) return undefined;
  const ms = Date.parse(ts);
  // Date.parse may roll an impossible date (Feb 30) over; writing it back catches that.
  return Number.isFinite(ms) && new Date(ms).toISOString() === ts ? ms : undefined;
}

/** checkReading returns `x` typed as a DecodedReading, or throws WireFormatError naming the field at `where`. */
export function checkReading(x: unknown, where: string): DecodedReading {
  const bad = (field: string, detail: string): never => {
    throw new WireFormatError(`${where}.${field}`, detail);
  };
  if (!isPlainObject(x)) throw new WireFormatError(where, "not a JSON object");
  if (!Number.isSafeInteger(x.seq) || (x.seq as number) < 0) bad("seq", "must be an integer >= 0");
  if (typeof x.device !== "string" || x.device === "") bad("device", "must be a non-empty string");
  if (typeof x.stream !== "string" || x.stream === "") bad("stream", "must be a non-empty string");
  if (typeof x.ts !== "string" || isoToMs(x.ts) === undefined)
    bad("ts", "must be an ISO 8601 UTC time with milliseconds, e.g. 2026-01-02T03:04:05.678Z");
  if (typeof x.tq !== "string" || !TIME_QUALITIES.has(x.tq))
    bad("tq", "must be ntp, rtc, unsynced or corrected");
  if (!isPlainObject(x.values)) bad("values", "must be a JSON object");
  for (const [name, v] of Object.entries(x.values as object)) {
    if (typeof v !== "number" && typeof v !== "string" && typeof v !== "boolean")
      bad(`values.${name}`, "must be a number, string or boolean");
  }
  if (x.te_ms !== undefined && (!Number.isSafeInteger(x.te_ms) || (x.te_ms as number) < 0))
    bad("te_ms", "must be an integer >= 0");
  if (x.boot !== undefined && typeof x.boot !== "string") bad("boot", "must be a string");
  if (x.mono_ms !== undefined && (typeof x.mono_ms !== "number" || !Number.isFinite(x.mono_ms)))
    bad("mono_ms", "must be a number");
  if (x.anomaly !== undefined && x.anomaly !== true) bad("anomaly", "must be true when present");
  if (x.time_note !== undefined && typeof x.time_note !== "string") bad("time_note", "must be a string");
  return x as DecodedReading;
}
