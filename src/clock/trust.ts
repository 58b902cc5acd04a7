/**
 * RTC trust carried across boots: what an NTP-synchronised boot learned about the RTC, so that a
 * later boot that never syncs knows how far off the RTC can be instead of assuming
 * RTC_UNVERIFIED_MS. Pure, no I/O (the file is trust-file.ts).
 *
 * What is learned (learnRtcTrust, from the raw anchors of a boot that has ntp anchors):
 *   - the offset o = rtc − true at the newest NTP-checked rtc anchor after the last RTC write,
 *     with its half-width (effectiveAnchors' bound of that anchor), and when that was (true UTC);
 *     on the kernel path, where the kernel rewrites the RTC every 11 minutes while synced without
 *     telling anyone, the hull of all offsets seen since its write at sync instead;
 *   - on the direct I2C path only (nobody else writes the RTC there), the RTC's rate: the offset
 *     change between the first checked rtc anchor of that chain within TRUST_MAX_SPAN_MS of the
 *     last and the last, over the true time between them, ± the sum of their half-widths over
 *     that time. Kept only when it beats the datasheet; otherwise the previous record's rate
 *     carries over while it is young enough.
 *
 * How a later boot uses it (trustedOffset, a bound on the RTC's offset at an RTC reading `r`,
 * E = r − checkedMs, the time since the check as the RTC counts it):
 *   datasheet: o ± (err + E · (RTC_PPM_WIDE + RTC_AGING_PPM))   — always
 *   measured:  o + E·ppm ± (err + E · (ppmErr + RTC_RATE_WANDER_PPM)) — while the rate is at most
 *              TRUST_RATE_MAX_AGE_MS old; the result is the intersection of the two.
 * So te_ms grows from the check at the measured rate's uncertainty, and once the check is old it
 * never claims better than the datasheet. A reading before the check (E < 0: the RTC was set back)
 * gets no bound from the record.
 *
 * Stated rates: RTC_AGING_PPM 1 — DS3231 ageing, first year (datasheet). RTC_RATE_WANDER_PPM 0.5 —
 * how far the rate may move from the measured one while the check is young: the TCXO's residual
 * with temperature and ageing over weeks. A device whose RTC sees very different temperatures
 * offline than while it was checked can exceed it; TRUST_RATE_MAX_AGE_MS limits how long.
 */
import type { WireAnchor } from "../wire/index.ts";
import { effectiveAnchors, type Interval, intersect, RTC_PPM_WIDE } from "./bounds.ts";
import type { RtcPath } from "./rtc/types.ts";
import type { Anchor } from "./types.ts";

export const RTC_AGING_PPM = 1;
export const RTC_RATE_WANDER_PPM = 0.5;
export const TRUST_RATE_MAX_AGE_MS = 30 * 86_400_000;
/** A rate is measured only over at least this much checked time (shorter says nothing useful). */
export const TRUST_MIN_SPAN_MS = 3_600_000;
/** …and over at most the last week: the rate of the conditions the RTC was last in, not a season's mean. */
export const TRUST_MAX_SPAN_MS = 7 * 86_400_000;

const PPM = 1e-6;

/** RtcTrust is the record kept on the data partition (version 1). */
export interface RtcTrust {
  v: 1;
  /** The RTC it is about (Rtc.description): another RTC, or another path to it, gets no trust. */
  rtc: string;
  /** The boot that learned it: that boot's own anchors already say more. */
  bootId: string;
  /** True UTC of the check, ms. */
  checkedMs: number;
  /** RTC − true at the check, ms, and the half-width of that interval. */
  offsetMs: number;
  offsetErrMs: number;
  /** The RTC's measured rate against true time, ppm (> 0 runs fast), ± ppmErr; absent = not measured. */
  ppm?: number;
  ppmErr?: number;
  /** True UTC at the end of the rate measurement. */
  ppmMs?: number;
}

export interface LearnOptions {
  rtc: string;
  bootId: string;
  path: RtcPath;
  /** The record in force (from the file), whose rate may carry over. */
  previous?: RtcTrust | undefined;
}

const monoMs = (a: Anchor) => Number(a.monoNs / 1000n) / 1000;

/** What this boot's anchors say about the RTC (module comment), or undefined when nothing. */
export function learnRtcTrust(raw: readonly Anchor[], o: LearnOptions): RtcTrust | undefined {
  if (!raw.some((a) => a.source === "ntp")) return undefined;
  const sorted = [...raw].sort((a, b) => (a.monoNs < b.monoNs ? -1 : a.monoNs > b.monoNs ? 1 : 0));
  let start = 0;
  sorted.forEach((a, i) => {
    if (a.source === "rtc-set") start = i + 1;
  });
  const chain = sorted.slice(start).filter((a) => a.source === "rtc" && a.uncertaintyMs < 500);
  if (chain.length === 0) return undefined;
  const wire = new Map<number, WireAnchor>();
  for (const w of effectiveAnchors(raw)) if (w.src === "rtc") wire.set(w.mono_ms, w);
  const checked = chain
    .map((a) => ({ a, w: wire.get(monoMs(a)) }))
    .filter((x): x is { a: Anchor; w: WireAnchor } => x.w !== undefined)
    .map(({ a, w }) => ({ trueMs: w.wall_ms, o: a.wallMs - w.wall_ms, e: w.err_ms }));
  const last = checked.at(-1);
  if (last === undefined) return undefined;
  let offset: Interval = { lo: last.o - last.e, hi: last.o + last.e };
  if (o.path === "kernel")
    for (const c of checked)
      offset = { lo: Math.min(offset.lo, c.o - c.e), hi: Math.max(offset.hi, c.o + c.e) };
  const out: RtcTrust = {
    v: 1,
    rtc: o.rtc,
    bootId: o.bootId,
    checkedMs: last.trueMs,
    offsetMs: (offset.lo + offset.hi) / 2,
    offsetErrMs: (offset.hi - offset.lo) / 2,
  };
  const first = checked.find((c) => c.trueMs >= last.trueMs - TRUST_MAX_SPAN_MS)!;
  const span = last.trueMs - first.trueMs;
  const measured =
    o.path === "i2c" && span >= TRUST_MIN_SPAN_MS
      ? { ppm: (last.o - first.o) / span / PPM, ppmErr: (first.e + last.e) / span / PPM, ppmMs: last.trueMs }
      : undefined;
  const p = o.previous;
  const carried =
    p?.ppm !== undefined &&
    p.ppmErr !== undefined &&
    p.ppmMs !== undefined &&
    p.rtc === o.rtc &&
    last.trueMs - p.ppmMs <= TRUST_RATE_MAX_AGE_MS
      ? { ppm: p.ppm, ppmErr: p.ppmErr, ppmMs: p.ppmMs }
      : undefined;
  const best =
    measured && carried ? (carried.ppmErr < measured.ppmErr ? carried : measured) : (measured ?? carried);
  if (best && best.ppmErr + RTC_RATE_WANDER_PPM < RTC_PPM_WIDE + RTC_AGING_PPM) Object.assign(out, best);
  return out;
}

/** The bound on the RTC's offset (rtc − true, ms) at an RTC reading of `rtcWallMs` (module comment). */
export function trustedOffset(t: RtcTrust, rtcWallMs: number): Interval | undefined {
  const e = rtcWallMs - t.checkedMs;
  if (!(e >= 0)) return undefined;
  const sheet = t.offsetErrMs + e * (RTC_PPM_WIDE + RTC_AGING_PPM) * PPM;
  const datasheet = { lo: t.offsetMs - sheet, hi: t.offsetMs + sheet };
  if (
    t.ppm === undefined ||
    t.ppmErr === undefined ||
    t.ppmMs === undefined ||
    rtcWallMs - t.ppmMs > TRUST_RATE_MAX_AGE_MS
  )
    return datasheet;
  const mid = t.offsetMs + e * t.ppm * PPM;
  const half = t.offsetErrMs + e * (t.ppmErr + RTC_RATE_WANDER_PPM) * PPM;
  return intersect(datasheet, { lo: mid - half, hi: mid + half }) ?? datasheet;
}

/** Checks a parsed record; undefined when it is not a version-1 record. */
export function parseRtcTrust(x: unknown): RtcTrust | undefined {
  if (typeof x !== "object" || x === null) return undefined;
  const t = x as Record<string, unknown>;
  const num = (k: string) => typeof t[k] === "number" && Number.isFinite(t[k]);
  if (t.v !== 1 || typeof t.rtc !== "string" || typeof t.bootId !== "string") return undefined;
  if (!num("checkedMs") || !num("offsetMs") || !num("offsetErrMs") || (t.offsetErrMs as number) < 0)
    return undefined;
  const out: RtcTrust = {
    v: 1,
    rtc: t.rtc,
    bootId: t.bootId,
    checkedMs: t.checkedMs as number,
    offsetMs: t.offsetMs as number,
    offsetErrMs: t.offsetErrMs as number,
  };
  if (num("ppm") && num("ppmErr") && num("ppmMs") && (t.ppmErr as number) >= 0) {
    out.ppm = t.ppm as number;
    out.ppmErr = t.ppmErr as number;
    out.ppmMs = t.ppmMs as number;
  }
  return out;
}
