/**
 * Anchor rules: how a reading's wall time and its error bound are chosen when it is published.
 * Pure functions, no I/O. The error model that turns raw anchors into bounded ones is bounds.ts;
 * the choice among them is the same rule every consumer applies (src/wire/clock.ts, restamp).
 *
 * A Stamp is taken at capture: (bootId, monoNs, wallMs, tq) where tq is
 *   ntp      — the kernel clock was NTP-synchronised; wallMs is the system clock;
 *   rtc      — not synced, but this boot has an RTC anchor; wallMs follows the RTC (bounds.ts);
 *   unsynced — neither; wallMs is whatever the system clock said (may be 2000-01-01 offline).
 *
 * publishStamp(stamp, anchorsOfItsBoot, currentBootId):
 *   1. ntp stamps are published as captured. Their bound is the error the kernel stated at the
 *      nearest ntp anchor (either side) plus |Δmono| × the crystal's ppm bound: between anchors
 *      the system clock runs on the crystal, and the kernel keeps saying "synchronised" for
 *      hours after the last NTP contact (STA_UNSYNC comes only once maxerror passes 16 s).
 *   2. Otherwise, if the stamp's boot has ntp or rtc anchors, the rule of src/wire/clock.ts picks
 *      the wall time with the smallest bound from all of them (anchors on both sides of a reading
 *      bound it from both sides). The result is "corrected" when the stamp was unsynced or the
 *      boot has an ntp anchor (the RTC has been checked); an rtc stamp of a boot that never
 *      synced stays "rtc" — the same RTC, read more often, is not a better source.
 *      Monotonic time within one boot is exact for this purpose; across boots it means nothing,
 *      so anchors are only ever applied to stamps of their own boot.
 *   3. Otherwise the capture stamp stands, with SYSTEM_UNCERTAINTY_MS. An unsynced stamp from an
 *      earlier boot (which can no longer gain anchors) carries note "earlier boot, never anchored"
 *      so consumers know the time will not improve.
 * Wall-clock age never orders or deletes anything; only mono within a boot and seq across boots.
 */
import { bestEstimate, type WireAnchor } from "../wire/index.ts";
import { CRYSTAL_PPM, effectiveAnchors } from "./bounds.ts";
import type { Anchor, PublishStamp, Stamp } from "./types.ts";

/** The uncertainty recorded for a "system" anchor: the clock may be off by decades offline. */
export const SYSTEM_UNCERTAINTY_MS = 100 * 365 * 86_400_000;
/** An ntp anchor when the source gives no estimate. */
export const NTP_DEFAULT_UNCERTAINTY_MS = 100;

export const EARLIER_BOOT_NOTE = "earlier boot, never anchored";

/** Monotonic ns as the ms the wire carries. */
export const nsToMs = (ns: bigint) => Number(ns / 1000n) / 1000;

/** How many anchors on each side of a stamp the device weighs (see nearestAnchors). */
export const NEAREST_PER_SIDE = 8;

/**
 * The anchors around monoMs in a list sorted by mono: NEAREST_PER_SIDE on each side. The
 * intersection over a subset still contains the true time, so the bound stays honest; far
 * anchors almost never bind, and this keeps a stamp O(log n) instead of O(n) for 256 anchors.
 */
export function nearestAnchors(sorted: readonly WireAnchor[], monoMs: number): readonly WireAnchor[] {
  if (sorted.length <= 2 * NEAREST_PER_SIDE) return sorted;
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]!.mono_ms < monoMs) lo = mid + 1;
    else hi = mid;
  }
  return sorted.slice(Math.max(0, lo - NEAREST_PER_SIDE), lo + NEAREST_PER_SIDE);
}

/** The crystal's ppm bound carried by a boot's effective anchors (CRYSTAL_PPM without any). */
export const crystalPpmOf = (effective: readonly WireAnchor[]): number => effective[0]?.ppm ?? CRYSTAL_PPM;

/**
 * The bound of an ntp stamp (module comment, rule 1): the smallest over the boot's ntp anchors of
 * the kernel's stated error there plus |Δmono| × `ppm` (the crystal's bound, CRYSTAL_PPM until
 * measured). Without any ntp anchor: NTP_DEFAULT_UNCERTAINTY_MS.
 */
export function ntpErrorAt(monoNs: bigint, anchors: readonly Anchor[], ppm = CRYSTAL_PPM): number {
  let best: number | undefined;
  for (const a of anchors) {
    if (a.source !== "ntp") continue;
    const d = a.monoNs > monoNs ? a.monoNs - monoNs : monoNs - a.monoNs;
    const e = a.uncertaintyMs + (Number(d) / 1e6) * ppm * 1e-6;
    if (best === undefined || e < best) best = e;
  }
  return best ?? NTP_DEFAULT_UNCERTAINTY_MS;
}

/**
 * publishStamp applies the anchor rules (see module comment) to one stamp. `effective` is
 * effectiveAnchors(anchors of the stamp's boot) when the caller has it cached.
 */
export function publishStamp(
  stamp: Stamp,
  anchors: readonly Anchor[],
  currentBootId: string,
  effective?: readonly WireAnchor[],
): PublishStamp {
  const own = anchors.filter((a) => a.bootId === stamp.bootId);
  const eff = effective ?? effectiveAnchors(own);
  if (stamp.tq === "ntp")
    return { wallMs: stamp.wallMs, tq: "ntp", errMs: ntpErrorAt(stamp.monoNs, own, crystalPpmOf(eff)) };
  const m = nsToMs(stamp.monoNs);
  const e = bestEstimate(m, nearestAnchors(eff, m));
  if (e) {
    const corrected = stamp.tq === "unsynced" || own.some((a) => a.source === "ntp");
    return { wallMs: e.wallMs, tq: corrected ? "corrected" : "rtc", errMs: e.errMs };
  }
  if (stamp.bootId !== currentBootId && stamp.tq === "unsynced")
    return { wallMs: stamp.wallMs, tq: stamp.tq, errMs: SYSTEM_UNCERTAINTY_MS, note: EARLIER_BOOT_NOTE };
  return { wallMs: stamp.wallMs, tq: stamp.tq, errMs: SYSTEM_UNCERTAINTY_MS };
}
