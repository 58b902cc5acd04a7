/**
 * The error model: turns the raw anchors one boot has recorded into anchors with an honest error
 * bound, in the wire shape that the re-stamp rule (src/wire/clock.ts) consumes. Pure, no I/O.
 *
 * Stated rates (the numbers every bound is built from):
 *   CRYSTAL_PPM        100  — the board's crystal (CLOCK_MONOTONIC) against true time, before its
 *                             rate is known. Pi-class boards ship ±20–50 ppm parts; 100 leaves
 *                             room for temperature and ageing.
 *   CRYSTAL_WANDER_PPM  10  — how far the crystal's rate may move away from its measured mean
 *                             (temperature swings between RTC reads).
 *   RTC_PPM              2  — DS3231 at 0–40 °C (datasheet); RTC_PPM_WIDE 3.5 outside that range
 *                             or when the temperature is unknown (−40…+85 °C).
 *   RTC_UNVERIFIED_MS 1000  — what an RTC that NTP has not checked during this boot is assumed
 *                             to be off by (it was set by an earlier synchronised boot).
 *
 * Raw anchors (what clock.ts records and the AnchorStore keeps):
 *   ntp    wall = the synchronised system clock at mono, uncertaintyMs = the kernel's estimate.
 *   rtc    wall = the RTC's second at the instant it ticked (second-edge capture), uncertaintyMs =
 *          how well that instant is known (half the polling bracket; 500 ms without an edge).
 *   system the unsynchronised system clock: kept so every boot has an anchor, never used here.
 *
 * Derived (effectiveAnchors):
 *   - crystal rate: from the first and last rtc anchors, rate = Δmono/Δrtc − 1, good to
 *     (ε_first + ε_last)/Δrtc + RTC_PPM + CRYSTAL_WANDER_PPM. Used only once that beats CRYSTAL_PPM.
 *   - an rtc anchor's error: the RTC's offset o = rtc − true is an interval. Each ntp anchor bounds
 *     it directly (its own error plus the crystal over the distance); between rtc anchors o moves
 *     by at most RTC_PPM of the time between them. One forward and one backward pass of that
 *     propagation give every anchor the tightest interval. So the RTC reads of 30 offline days
 *     carry errors growing at 2 ppm from the last NTP check — and when NTP returns, the check at
 *     the far end closes the interval from the other side and corrects them all.
 *     The chain breaks at an "rtc-set" marker: writing the RTC makes its offset jump.
 *   - an RTC checked by NTP in an earlier boot (trust.ts, the record on the data partition)
 *     bounds the offset of every rtc anchor before this boot's first RTC write directly, growing
 *     from that check at the measured rate ± its uncertainty (datasheet once the check is old).
 *   - with neither an ntp anchor this boot nor such a record, the first rtc anchor's offset is
 *     ±RTC_UNVERIFIED_MS.
 *
 * compactAnchors keeps a boot's anchors bounded: past MAX_ANCHORS_PER_BOOT it drops, one at a
 * time, first a plain (not edge-captured) rtc anchor when an edge-captured one exists, else the
 * inner anchor whose neighbours are closest together (so the kept ones stay evenly spread over
 * the boot). It never drops the first or last of a source, an rtc-set marker, or an rtc anchor
 * next to an ntp anchor or an rtc-set marker (where NTP checks the RTC; ntp anchors between
 * them can go, which frees them in turn).
 */
import type { WireAnchor } from "../wire/index.ts";
import type { Anchor } from "./types.ts";

export const CRYSTAL_PPM = 100;
export const CRYSTAL_WANDER_PPM = 10;
export const RTC_PPM = 2;
export const RTC_PPM_WIDE = 3.5;
export const RTC_UNVERIFIED_MS = 1000;

const PPM = 1e-6;

/** The DS3231's stated rate for a die temperature (undefined = unknown). */
export function rtcPpmAt(temperatureC: number | undefined): number {
  return temperatureC !== undefined && temperatureC >= 0 && temperatureC <= 40 ? RTC_PPM : RTC_PPM_WIDE;
}

export interface RateEstimate {
  /** How fast CLOCK_MONOTONIC runs against true time, ppm. */
  ratePpm: number;
  /** Bound on the true rate's distance from ratePpm at any moment, ppm. */
  ppm: number;
}

/** An rtc anchor from a second-edge capture (a plain read is ±500 ms): good enough to measure rates. */
export const isEdgeAnchor = (a: Anchor) => a.source === "rtc" && a.uncertaintyMs < 500;

const monoMs = (a: Anchor) => Number(a.monoNs / 1000n) / 1000;
const ppmOf = (a: Anchor) => a.ppm ?? RTC_PPM_WIDE;

/**
 * The crystal's rate measured against the RTC (module comment), or the stated crystal bound.
 * `rtcAnchors` are edge-captured rtc anchors sorted by mono; `sets` the monos where the RTC was
 * written, which the measurement must not straddle (the longest stretch without one is used).
 */
export function crystalRate(rtcAnchors: readonly Anchor[], sets: readonly bigint[] = []): RateEstimate {
  const unknown = { ratePpm: 0, ppm: CRYSTAL_PPM };
  let best: [Anchor, Anchor] | undefined;
  let start = 0;
  for (let i = 1; i <= rtcAnchors.length; i++) {
    const cut =
      i === rtcAnchors.length ||
      sets.some((m) => m > rtcAnchors[i - 1]!.monoNs && m <= rtcAnchors[i]!.monoNs);
    if (!cut) continue;
    const [first, last] = [rtcAnchors[start]!, rtcAnchors[i - 1]!];
    if (best === undefined || last.monoNs - first.monoNs > best[1].monoNs - best[0].monoNs)
      best = [first, last];
    start = i;
  }
  if (best === undefined) return unknown;
  const [first, last] = best;
  const dWall = last.wallMs - first.wallMs;
  if (dWall <= 0) return unknown;
  const ratePpm = ((monoMs(last) - monoMs(first)) / dWall - 1) / PPM;
  const ppm =
    (first.uncertaintyMs + last.uncertaintyMs) / dWall / PPM +
    Math.max(ppmOf(first), ppmOf(last)) +
    CRYSTAL_WANDER_PPM;
  return ppm < CRYSTAL_PPM && Math.abs(ratePpm) < 1000 ? { ratePpm, ppm } : unknown;
}

export interface Interval {
  lo: number;
  hi: number;
}

export const intersect = (a: Interval, b: Interval): Interval | undefined => {
  const lo = Math.max(a.lo, b.lo);
  const hi = Math.min(a.hi, b.hi);
  return lo <= hi ? { lo, hi } : undefined;
};

/**
 * A bound on the RTC's offset (rtc − true, ms) at an RTC reading, known from before this boot
 * (trust.ts: an earlier boot's NTP check); undefined where it says nothing.
 */
export type RtcPrior = (rtcWallMs: number) => Interval | undefined;

/**
 * effectiveAnchors derives the wire anchors of one boot from its raw anchors (module comment):
 * ntp and rtc anchors with error bounds and the crystal rate, sorted by mono; system anchors left out.
 * `prior` bounds the offset of the rtc anchors before the boot's first RTC write directly, like an
 * ntp anchor does (an ntp anchor wins where the two disagree); without ntp anchors or a prior the
 * first rtc anchor's offset is ±RTC_UNVERIFIED_MS.
 */
export function effectiveAnchors(raw: readonly Anchor[], prior?: RtcPrior): WireAnchor[] {
  const sorted = [...raw].sort((a, b) => (a.monoNs < b.monoNs ? -1 : a.monoNs > b.monoNs ? 1 : 0));
  const ntp = sorted.filter((a) => a.source === "ntp");
  const sets = sorted.filter((a) => a.source === "rtc-set").map((a) => a.monoNs);
  const rate = crystalRate(sorted.filter(isEdgeAnchor), sets);
  const out: WireAnchor[] = ntp.map((a) => ({
    mono_ms: monoMs(a),
    wall_ms: a.wallMs,
    src: "ntp",
    err_ms: a.uncertaintyMs,
    ppm: rate.ppm,
    rate_ppm: rate.ratePpm,
  }));
  // True time at mono m according to one ntp anchor, as an interval.
  const fromNtp = (n: WireAnchor, m: number): Interval => {
    const d = m - n.mono_ms;
    const mid = n.wall_ms + d / (1 + rate.ratePpm * PPM);
    const half = n.err_ms + Math.abs(d) * rate.ppm * PPM;
    return { lo: mid - half, hi: mid + half };
  };
  const all = sorted.filter((a) => a.source === "rtc");
  // Chain breaks: an RTC write between two rtc anchors.
  const linked = (j: number, k: number) => {
    const [x, y] = [all[j]!.monoNs, all[k]!.monoNs].sort((p, q) => (p < q ? -1 : 1));
    return !sets.some((m) => m > x! && m <= y!);
  };
  const offsets: Array<Interval | undefined> = all.map((a) => {
    let o: Interval | undefined;
    for (const n of out) {
      const t = fromNtp(n, monoMs(a));
      const direct = { lo: a.wallMs - t.hi - a.uncertaintyMs, hi: a.wallMs - t.lo + a.uncertaintyMs };
      o =
        o === undefined
          ? direct
          : (intersect(o, direct) ?? (direct.hi - direct.lo < o.hi - o.lo ? direct : o));
    }
    return o;
  });
  let priorUsed = false;
  if (prior) {
    const firstSet = sets[0];
    all.forEach((a, i) => {
      if (firstSet !== undefined && a.monoNs >= firstSet) return;
      const p = prior(a.wallMs);
      if (p === undefined) return;
      const widened = { lo: p.lo - a.uncertaintyMs, hi: p.hi + a.uncertaintyMs };
      const cur = offsets[i];
      offsets[i] = cur === undefined ? widened : (intersect(cur, widened) ?? cur);
      priorUsed = true;
    });
  }
  if (ntp.length === 0 && all.length > 0 && !priorUsed) {
    offsets[0] = { lo: -RTC_UNVERIFIED_MS, hi: RTC_UNVERIFIED_MS };
  }
  // offsets[k] bounds the RTC's offset (rtc − true) at the true instant of anchor k's tick: an ntp
  // anchor bounds it directly (its error, the crystal over the distance, and the ε of when the
  // tick was); from one tick to the next it moves by at most the RTC's rate (in true time: mono
  // distance times 1 + crystal). ε enters once, at the end, not at every hop.
  const spread = (j: number, k: number) =>
    Math.abs(monoMs(all[k]!) - monoMs(all[j]!)) *
    (1 + CRYSTAL_PPM * PPM) *
    Math.max(ppmOf(all[j]!), ppmOf(all[k]!)) *
    PPM;
  const pass = (order: number[]) => {
    for (let i = 1; i < order.length; i++) {
      const [j, k] = [order[i - 1]!, order[i]!];
      const prev = offsets[j];
      if (prev === undefined || !linked(j, k)) continue;
      const s = spread(j, k);
      const carried = { lo: prev.lo - s, hi: prev.hi + s };
      const cur = offsets[k];
      offsets[k] = cur === undefined ? carried : (intersect(cur, carried) ?? cur);
    }
  };
  const idx = all.map((_, i) => i);
  pass(idx);
  pass(idx.reverse());
  all.forEach((a, i) => {
    const o = offsets[i];
    if (o === undefined) return;
    out.push({
      mono_ms: monoMs(a),
      wall_ms: a.wallMs - (o.lo + o.hi) / 2,
      src: "rtc",
      err_ms: (o.hi - o.lo) / 2 + a.uncertaintyMs,
      ppm: rate.ppm,
      rate_ppm: rate.ratePpm,
    });
  });
  return out.sort((a, b) => a.mono_ms - b.mono_ms);
}

export const MAX_ANCHORS_PER_BOOT = 256;

/** compactAnchors returns `raw` thinned to at most `max` anchors (module comment). */
export function compactAnchors(raw: readonly Anchor[], max = MAX_ANCHORS_PER_BOOT): Anchor[] {
  const list = [...raw].sort((a, b) => (a.monoNs < b.monoNs ? -1 : a.monoNs > b.monoNs ? 1 : 0));
  // An rtc anchor next to an ntp anchor or an RTC write ends a chain: NTP checks the RTC there.
  const chainEnd = (i: number) =>
    [list[i - 1], list[i + 1]].some((n) => n?.source === "ntp" || n?.source === "rtc-set");
  while (list.length > max) {
    const plain = list.findIndex((a) => a.source === "rtc" && !isEdgeAnchor(a));
    if (plain >= 0 && list.some(isEdgeAnchor)) {
      list.splice(plain, 1);
      continue;
    }
    // The first and last anchor of each source stay: they span what the boot knows.
    const ends = new Set<Anchor>();
    const seen = new Map<string, Anchor>();
    for (const a of list) {
      if (!seen.has(a.source)) ends.add(a);
      seen.set(a.source, a);
    }
    for (const a of seen.values()) ends.add(a);
    let drop = -1;
    let bestGap = 0n;
    for (let i = 1; i < list.length - 1; i++) {
      const a = list[i]!;
      if (a.source === "rtc-set" || ends.has(a) || (a.source === "rtc" && chainEnd(i))) continue;
      const gap = list[i + 1]!.monoNs - list[i - 1]!.monoNs;
      if (drop < 0 || gap < bestGap) [drop, bestGap] = [i, gap];
    }
    if (drop < 0) break;
    list.splice(drop, 1);
  }
  return list;
}
