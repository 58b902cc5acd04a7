/**
 * Anchor rules: how a reading's wall time is chosen when it is published. Pure functions, no I/O.
 *
 * A Stamp is taken at capture: (bootId, monoNs, wallMs, tq) where tq is
 *   ntp      — the kernel clock was NTP-synchronised; wallMs is the system clock;
 *   rtc      — not synced, but this boot has an anchor to a valid RTC; wallMs = rtc anchor + Δmono;
 *   unsynced — neither; wallMs is whatever the system clock said (may be 2000-01-01 offline).
 *
 * An Anchor ties one boot's CLOCK_MONOTONIC instant to a wall time from a source, with an
 * uncertainty. Sources rank ntp > rtc > system ("system" = the unsynchronised system clock,
 * recorded so every boot has at least one anchor; its uncertainty is SYSTEM_UNCERTAINTY_MS).
 *
 * bestAnchor(anchors): highest-ranked source; within a source the smallest uncertainty, then
 * the newest (largest monoNs) — the newest is closest to readings still waiting to be published.
 *
 * publishStamp(stamp, anchorsOfItsBoot, currentBootId):
 *   1. ntp stamps are published as captured.
 *   2. If the stamp's boot has an anchor ranking above the capture quality (an ntp anchor for an
 *      rtc or unsynced stamp; an rtc anchor for an unsynced stamp), the best such anchor re-stamps
 *      it: wall = anchor.wall + (stamp.mono − anchor.mono) / 1e6, tq "corrected". Monotonic time
 *      within one boot is exact for this purpose; across boots it means nothing, so anchors are
 *      only ever applied to stamps of their own boot.
 *   3. Otherwise the capture stamp stands. An unsynced stamp from an earlier boot (which can no
 *      longer gain anchors) carries note "earlier boot, never anchored" so consumers know the
 *      time will not improve. (An rtc stamp was anchored — to the RTC — and carries no note.)
 * Wall-clock age never orders or deletes anything; only mono within a boot and seq across boots.
 */
import type { Anchor, AnchorSource, PublishStamp, Stamp } from "./types.ts";

/** The uncertainty recorded for a "system" anchor: the clock may be off by decades offline. */
export const SYSTEM_UNCERTAINTY_MS = 100 * 365 * 86_400_000;

export const EARLIER_BOOT_NOTE = "earlier boot, never anchored";

const RANK: Record<AnchorSource, number> = { system: 0, rtc: 1, ntp: 2 };
const QUALITY_RANK: Record<Stamp["tq"], number> = { unsynced: 0, rtc: 1, ntp: 2 };

/** Compare two anchors: negative when a is better than b. */
export function compareAnchors(a: Anchor, b: Anchor): number {
  if (RANK[a.source] !== RANK[b.source]) return RANK[b.source] - RANK[a.source];
  if (a.uncertaintyMs !== b.uncertaintyMs) return a.uncertaintyMs - b.uncertaintyMs;
  return a.monoNs > b.monoNs ? -1 : a.monoNs < b.monoNs ? 1 : 0;
}

/** bestAnchor is the anchor to trust most (see module comment), or undefined for none. */
export function bestAnchor(anchors: readonly Anchor[]): Anchor | undefined {
  let best: Anchor | undefined;
  for (const a of anchors) if (best === undefined || compareAnchors(a, best) < 0) best = a;
  return best;
}

/**
 * The best anchor of each source among `anchors` (at most three). Because bestAnchor and
 * publishStamp only ever pick the best of some set of sources, these give the same answers as
 * the full list — so a long-running clock keeps three anchors per boot in memory, not thousands.
 */
export function bestPerSource(anchors: readonly Anchor[]): Anchor[] {
  const best = new Map<AnchorSource, Anchor>();
  for (const a of anchors) {
    const b = best.get(a.source);
    if (b === undefined || compareAnchors(a, b) < 0) best.set(a.source, a);
  }
  return [...best.values()];
}

/** Wall time at `monoNs` according to an anchor of the same boot, ms since the epoch. */
export function wallFromAnchor(anchor: Anchor, monoNs: bigint): number {
  return anchor.wallMs + Number(monoNs - anchor.monoNs) / 1e6;
}

/** publishStamp applies the anchor rules (see module comment) to one stamp. */
export function publishStamp(stamp: Stamp, anchors: readonly Anchor[], currentBootId: string): PublishStamp {
  if (stamp.tq === "ntp") return { wallMs: stamp.wallMs, tq: "ntp" };
  const better = bestAnchor(
    anchors.filter((a) => a.bootId === stamp.bootId && RANK[a.source] > QUALITY_RANK[stamp.tq]),
  );
  if (better) return { wallMs: wallFromAnchor(better, stamp.monoNs), tq: "corrected" };
  if (stamp.bootId !== currentBootId && stamp.tq === "unsynced")
    return { wallMs: stamp.wallMs, tq: stamp.tq, note: EARLIER_BOOT_NOTE };
  return { wallMs: stamp.wallMs, tq: stamp.tq };
}
