/**
 * The clock message and the reference re-stamp rule: how a consumer fixes the time of readings a
 * device published before it knew the time well (contract 2 in the README's time contract).
 *
 * Topic `<topic_prefix>/<device>/clock/<boot_id>`, QoS 1, retained: one message per boot, and each
 * publication carries ALL anchors the device keeps for that boot, so the newest supersedes the
 * older ones and a late subscriber gets everything from the retained copy. Payload, JSON:
 *
 *   {"v":1,"device":"pi-7","boot":"<boot_id>","anchors":[
 *     {"mono_ms":1234.567,"wall_ms":1764460000000,"src":"ntp","err_ms":12,"ppm":100},
 *     {"mono_ms":601234.5,"wall_ms":1764460600000.2,"src":"rtc","err_ms":4.1,"ppm":7,"rate_ppm":49.8}]}
 *
 * An anchor says: at CLOCK_MONOTONIC `mono_ms` of boot `boot`, true UTC was `wall_ms` ± `err_ms`.
 * `rate_ppm` (default 0) is how fast CLOCK_MONOTONIC ran against true time near the anchor (the
 * board's crystal, estimated against the RTC), and `ppm` bounds how far the true rate may be from
 * it. Readings published with `tq` "unsynced" or "rtc" carry `boot` and `mono_ms`.
 *
 * The rule (restamp): for a reading of the same boot at monotonic time m, every anchor a says
 *   true wall ∈ w_a ± b_a,  w_a = a.wall + (m − a.mono) / (1 + a.rate),  b_a = a.err + |m − a.mono|·a.ppm
 * (ppm and rate in units of 1e-6). All of them hold at once, so the true time lies in the
 * intersection [max(w_a − b_a), min(w_a + b_a)]: the estimate is its middle and the bound its half
 * width — never worse than the best single anchor, and with anchors on both sides of a reading
 * much better (it follows the straight line between them when the crystal's rate is unknown). If
 * the intervals do not intersect, some anchor overstated its accuracy; the rule then falls back to
 * the single anchor with the smallest bound. The result replaces the reading's stamp only if its
 * bound, rounded up to whole ms, is smaller than the reading's te_ms. So applying a message twice,
 * or an older message after a newer one (whose anchors include the older ones), changes nothing:
 * re-stamping is idempotent and order-independent. Monotonic time means nothing across
 * boots, so a message is applied only to readings of its own boot.
 */
import { FieldrelayError } from "../errors/index.ts";

export const CLOCK_MESSAGE_VERSION = 1;

export type WireAnchorSource = "ntp" | "rtc";

/** WireAnchor ties a monotonic instant of one boot to true time within err_ms. */
export interface WireAnchor {
  mono_ms: number;
  wall_ms: number;
  src: WireAnchorSource;
  err_ms: number;
  /** Bound on |true rate − rate_ppm| of CLOCK_MONOTONIC near this anchor, ppm. */
  ppm: number;
  /** Estimated rate of CLOCK_MONOTONIC against true time near this anchor, ppm (absent = 0). */
  rate_ppm?: number;
}

/** ClockMessage is one boot's anchors as a device publishes them. */
export interface ClockMessage {
  v: typeof CLOCK_MESSAGE_VERSION;
  device: string;
  boot: string;
  anchors: WireAnchor[];
}

/** ClockMessageError is a clock message that cannot be decoded; `context.field` says which part. */
export class ClockMessageError extends FieldrelayError {}

/** The topic of one boot's clock message. */
export function clockTopic(prefix: string, deviceId: string, bootId: string): string {
  return `${prefix}/${deviceId}/clock/${bootId}`;
}

/** Round to microseconds so the JSON stays short. */
const round3 = (x: number) => Math.round(x * 1000) / 1000;

export function encodeClockMessage(msg: ClockMessage): string {
  return JSON.stringify({
    v: msg.v,
    device: msg.device,
    boot: msg.boot,
    anchors: msg.anchors.map((a) => {
      const out: WireAnchor = {
        mono_ms: round3(a.mono_ms),
        wall_ms: round3(a.wall_ms),
        src: a.src,
        err_ms: round3(a.err_ms),
        ppm: round3(a.ppm),
      };
      if (a.rate_ppm !== undefined && a.rate_ppm !== 0) out.rate_ppm = round3(a.rate_ppm);
      return out;
    }),
  });
}

function fail(message: string, field: string): never {
  throw new ClockMessageError(`clock message: ${message}`, {
    hint: "expected the JSON of contract 2 (README, time contract)",
    context: { field },
  });
}

function finite(value: unknown, field: string, min = Number.NEGATIVE_INFINITY): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min)
    fail(`${field} must be a finite number${min > Number.NEGATIVE_INFINITY ? ` ≥ ${min}` : ""}`, field);
  return value;
}

/** decodeClockMessage parses and checks a payload; throws ClockMessageError on anything malformed. */
export function decodeClockMessage(payload: Uint8Array | string): ClockMessage {
  const text = typeof payload === "string" ? payload : new TextDecoder().decode(payload);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    fail("not JSON", "payload");
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail("not a JSON object", "payload");
  const o = raw as Record<string, unknown>;
  if (o.v !== CLOCK_MESSAGE_VERSION) fail(`unsupported version ${JSON.stringify(o.v)}`, "v");
  if (typeof o.device !== "string" || o.device === "") fail("device must be a non-empty string", "device");
  if (typeof o.boot !== "string" || o.boot === "") fail("boot must be a non-empty string", "boot");
  if (!Array.isArray(o.anchors)) fail("anchors must be an array", "anchors");
  const anchors = o.anchors.map((x: unknown, i: number): WireAnchor => {
    const at = `anchors[${i}]`;
    if (typeof x !== "object" || x === null) fail(`${at} is not an object`, at);
    const a = x as Record<string, unknown>;
    if (a.src !== "ntp" && a.src !== "rtc") fail(`${at}.src must be "ntp" or "rtc"`, `${at}.src`);
    const anchor: WireAnchor = {
      mono_ms: finite(a.mono_ms, `${at}.mono_ms`, 0),
      wall_ms: finite(a.wall_ms, `${at}.wall_ms`),
      src: a.src,
      err_ms: finite(a.err_ms, `${at}.err_ms`, 0),
      ppm: finite(a.ppm, `${at}.ppm`, 0),
    };
    if (a.rate_ppm !== undefined) anchor.rate_ppm = finite(a.rate_ppm, `${at}.rate_ppm`);
    return anchor;
  });
  return { v: CLOCK_MESSAGE_VERSION, device: o.device, boot: o.boot, anchors };
}

/** Estimate is a wall time with its error bound, both ms. */
export interface Estimate {
  wallMs: number;
  errMs: number;
  /** The anchors whose intervals bound it (one or two). */
  from: WireAnchor[];
}

const PPM = 1e-6;

function extrapolate(a: WireAnchor, monoMs: number): Estimate {
  const d = monoMs - a.mono_ms;
  return {
    wallMs: a.wall_ms + d / (1 + (a.rate_ppm ?? 0) * PPM),
    errMs: a.err_ms + Math.abs(d) * a.ppm * PPM,
    from: [a],
  };
}

/**
 * bestEstimate applies the rule (module comment) to one monotonic instant: the middle of the
 * intersection of every anchor's interval, or undefined without anchors. Any order of anchors.
 */
export function bestEstimate(monoMs: number, anchors: readonly WireAnchor[]): Estimate | undefined {
  let single: Estimate | undefined;
  let lower = Number.NEGATIVE_INFINITY;
  let upper = Number.POSITIVE_INFINITY;
  let lowFrom: WireAnchor | undefined;
  let upFrom: WireAnchor | undefined;
  for (const a of anchors) {
    const e = extrapolate(a, monoMs);
    if (single === undefined || e.errMs < single.errMs) single = e;
    if (e.wallMs - e.errMs > lower) [lower, lowFrom] = [e.wallMs - e.errMs, a];
    if (e.wallMs + e.errMs < upper) [upper, upFrom] = [e.wallMs + e.errMs, a];
  }
  if (single === undefined || lowFrom === undefined || upFrom === undefined || lower > upper) return single;
  return {
    wallMs: (lower + upper) / 2,
    errMs: (upper - lower) / 2,
    from: lowFrom === upFrom ? [lowFrom] : [lowFrom, upFrom],
  };
}

/** The fields of a published reading that re-stamping reads (a decoded envelope has them all). */
export interface RestampInput {
  ts: string | number;
  tq: string;
  te_ms: number;
  boot?: string | undefined;
  mono_ms?: number | undefined;
}

export interface Restamped {
  /** ISO 8601, as in the envelope. */
  ts: string;
  wall_ms: number;
  tq: "corrected";
  te_ms: number;
}

/**
 * restamp is the reference consumer rule: a better stamp for `reading` from the anchors in `msg`,
 * or undefined when the message is for another boot, the reading carries no monotonic time, or
 * no anchor makes its bound smaller. Idempotent and order-independent (module comment).
 */
export function restamp(reading: RestampInput, msg: ClockMessage): Restamped | undefined {
  if (reading.tq === "ntp" || reading.boot !== msg.boot || reading.mono_ms === undefined) return undefined;
  const e = bestEstimate(reading.mono_ms, msg.anchors);
  if (e === undefined) return undefined;
  const teMs = Math.ceil(e.errMs);
  if (!(teMs < reading.te_ms)) return undefined;
  return {
    ts: new Date(Math.round(e.wallMs)).toISOString(),
    wall_ms: e.wallMs,
    tq: "corrected",
    te_ms: teMs,
  };
}
