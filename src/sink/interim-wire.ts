/**
 * INTERIM, until src/wire (batch helper #15, time helper #13) lands on this branch: a
 * clearly-scoped decoder of the single-reading JSON envelope (src/publish/envelope.ts plus #13's
 * te_ms/boot/mono_ms), of the clock message, and the reference re-stamp rule of CONTRACTS.md §2.
 * It exports the same names as src/wire so src/sink/wire.ts switches with one line.
 */
import { FieldrelayError } from "../errors/index.ts";

export class WireFormatError extends FieldrelayError {}

export type TimeQuality = "ntp" | "rtc" | "unsynced" | "corrected";

export interface DecodedReading {
  seq: number;
  device: string;
  stream: string;
  ts: string;
  tq: TimeQuality;
  values: Record<string, unknown>;
  te_ms?: number;
  boot?: string;
  mono_ms?: number;
  anomaly?: boolean;
  time_note?: string;
}

export interface ClockAnchor {
  mono_ms: number;
  wall_ms: number;
  src: "ntp" | "rtc";
  err_ms: number;
  ppm: number;
}

export interface ClockMessage {
  v: number;
  device: string;
  boot: string;
  anchors: ClockAnchor[];
}

const TQ = new Set(["ntp", "rtc", "unsynced", "corrected"]);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function parseJson(payload: Uint8Array | string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(
      typeof payload === "string" ? payload : new TextDecoder("utf-8", { fatal: true }).decode(payload),
    );
  } catch (error) {
    throw new WireFormatError(`not JSON: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new WireFormatError("not a JSON object");
  return value as Record<string, unknown>;
}

const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

export function decodeReadings(payload: Uint8Array, _contentType?: string): DecodedReading[] {
  const o = parseJson(payload);
  if (!Number.isSafeInteger(o.seq) || (o.seq as number) < 0)
    throw new WireFormatError("seq is not a non-negative integer");
  if (typeof o.device !== "string" || o.device === "") throw new WireFormatError("device missing");
  if (typeof o.stream !== "string" || o.stream === "") throw new WireFormatError("stream missing");
  if (typeof o.ts !== "string" || Number.isNaN(Date.parse(o.ts)))
    throw new WireFormatError("ts is not an ISO time");
  if (typeof o.tq !== "string" || !TQ.has(o.tq)) throw new WireFormatError("tq is not a time quality");
  if (typeof o.values !== "object" || o.values === null || Array.isArray(o.values))
    throw new WireFormatError("values is not an object");
  const r: DecodedReading = {
    seq: o.seq as number,
    device: o.device,
    stream: o.stream,
    ts: o.ts,
    tq: o.tq as TimeQuality,
    values: o.values as Record<string, unknown>,
  };
  if (isNum(o.te_ms)) r.te_ms = o.te_ms;
  if (typeof o.boot === "string" && UUID.test(o.boot)) r.boot = o.boot.toLowerCase();
  if (isNum(o.mono_ms)) r.mono_ms = o.mono_ms;
  if (o.anomaly === true) r.anomaly = true;
  if (typeof o.time_note === "string") r.time_note = o.time_note;
  return [r];
}

export function decodeClockMessage(payload: Uint8Array | string): ClockMessage {
  const o = parseJson(payload);
  if (o.v !== 1) throw new WireFormatError("unknown clock message version");
  if (typeof o.device !== "string" || o.device === "") throw new WireFormatError("device missing");
  if (typeof o.boot !== "string" || !UUID.test(o.boot)) throw new WireFormatError("boot is not a uuid");
  if (!Array.isArray(o.anchors)) throw new WireFormatError("anchors is not an array");
  const anchors = o.anchors.map((a: Record<string, unknown>) => {
    if (
      !isNum(a?.mono_ms) ||
      !isNum(a.wall_ms) ||
      !isNum(a.err_ms) ||
      !isNum(a.ppm) ||
      (a.src !== "ntp" && a.src !== "rtc")
    )
      throw new WireFormatError("malformed anchor");
    return {
      mono_ms: a.mono_ms,
      wall_ms: a.wall_ms,
      src: a.src,
      err_ms: a.err_ms,
      ppm: a.ppm,
    } as ClockAnchor;
  });
  return { v: 1, device: o.device, boot: o.boot.toLowerCase(), anchors };
}

/** The best stamp the anchors give a reading of their boot, or undefined when none improves it. */
export function restamp(
  reading: {
    ts: string | number;
    tq: TimeQuality;
    te_ms?: number | undefined;
    boot?: string | undefined;
    mono_ms?: number | undefined;
  },
  msg: ClockMessage,
): { ts: number; tq: "corrected"; te_ms: number } | undefined {
  if (reading.mono_ms === undefined || reading.boot === undefined || reading.boot !== msg.boot)
    return undefined;
  if (reading.tq === "ntp") return undefined;
  let best: { ts: number; err: number } | undefined;
  for (const a of msg.anchors) {
    const distance = Math.abs(reading.mono_ms - a.mono_ms);
    const err = a.err_ms + (distance * a.ppm) / 1e6;
    if (!best || err < best.err) best = { ts: a.wall_ms + (reading.mono_ms - a.mono_ms), err };
  }
  if (!best) return undefined;
  const te = Math.ceil(best.err);
  if (reading.te_ms !== undefined && te >= reading.te_ms) return undefined;
  return { ts: Math.round(best.ts), tq: "corrected", te_ms: te };
}
