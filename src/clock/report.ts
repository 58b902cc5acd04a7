/**
 * clockReport is what `fieldrelay clock` shows about one boot, computed from the anchors the
 * queue database holds (pure: the command does the I/O): the anchors as the clock message would
 * carry them, the crystal's rate against the RTC, and the error bound of a stamp taken now —
 * with the RTC trust record (trust.ts) applied as the service applies it to a boot that did not
 * learn it (the service also checks that it is about the same RTC; this report shows which).
 */
import { bestEstimate, type WireAnchor } from "../wire/index.ts";
import { crystalPpmOf, nsToMs, ntpErrorAt, SYSTEM_UNCERTAINTY_MS } from "./anchors.ts";
import { CRYSTAL_PPM, compactAnchors, crystalRate, effectiveAnchors, isEdgeAnchor } from "./bounds.ts";
import type { SyncState } from "./sync.ts";
import { type RtcTrust, trustedOffset } from "./trust.ts";
import type { Anchor } from "./types.ts";

export interface ClockReport {
  bootId: string;
  synced: boolean;
  /** The wall time a stamp taken now would carry, ms; undefined without any anchor. */
  nowMs: number | undefined;
  /** Its error bound, ms; undefined when unbounded (no ntp/rtc anchor, not synced). */
  boundMs: number | undefined;
  crystal: { ratePpm: number; ppm: number } | undefined;
  stored: number;
  anchors: WireAnchor[];
  /** The RTC trust record on the data partition, if any, and whether it bounds this boot. */
  trust: (RtcTrust & { applied: boolean }) | undefined;
}

export function clockReport(
  bootId: string,
  stored: readonly Anchor[],
  monoNs: bigint,
  systemMs: number,
  sync: SyncState,
  trust?: RtcTrust,
): ClockReport {
  const raw = compactAnchors(stored);
  const applied = trust !== undefined && trust.bootId !== bootId;
  const anchors = effectiveAnchors(raw, applied ? (w) => trustedOffset(trust, w) : undefined);
  const rate = crystalRate(
    raw.filter(isEdgeAnchor),
    raw.filter((a) => a.source === "rtc-set").map((a) => a.monoNs),
  );
  const e = bestEstimate(nsToMs(monoNs), anchors);
  const bound = sync.synced ? ntpErrorAt(monoNs, raw, crystalPpmOf(anchors)) : e?.errMs;
  return {
    bootId,
    synced: sync.synced,
    nowMs: sync.synced ? systemMs : e?.wallMs,
    boundMs: bound === undefined || bound >= SYSTEM_UNCERTAINTY_MS ? undefined : bound,
    crystal: rate.ppm < CRYSTAL_PPM ? rate : undefined,
    stored: stored.length,
    anchors,
    trust: trust ? { ...trust, applied } : undefined,
  };
}
