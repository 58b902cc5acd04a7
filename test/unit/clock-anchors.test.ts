import { describe, expect, it } from "vitest";
import { EARLIER_BOOT_NOTE, publishStamp, SYSTEM_UNCERTAINTY_MS } from "../../src/clock/anchors.ts";
import {
  CRYSTAL_PPM,
  compactAnchors,
  crystalRate,
  effectiveAnchors,
  RTC_PPM,
  RTC_UNVERIFIED_MS,
  rtcPpmAt,
} from "../../src/clock/bounds.ts";
import type { Anchor, AnchorSource, Stamp } from "../../src/clock/types.ts";

const BOOT = "boot-a";
const OTHER = "boot-b";
const S = 1_000_000_000n;
const TRUTH = Date.UTC(2026, 10, 25, 12, 0, 0);
const Y2K = Date.UTC(2000, 0, 1);

const anchor = (
  source: AnchorSource,
  monoS: number,
  wallMs: number,
  uncertaintyMs = 10,
  bootId = BOOT,
): Anchor => ({
  bootId,
  monoNs: BigInt(monoS) * S,
  wallMs,
  source,
  uncertaintyMs,
});
const stamp = (tq: Stamp["tq"], monoS: number, wallMs: number, bootId = BOOT): Stamp => ({
  bootId,
  monoNs: BigInt(monoS) * S,
  wallMs,
  tq,
});

describe("publishStamp (anchor rules)", () => {
  const ntp = anchor("ntp", 1000, TRUTH, 10);
  const rtc = anchor("rtc", 10, TRUTH - 990_000 + 400, 3);
  const sys = anchor("system", 5, Y2K, SYSTEM_UNCERTAINTY_MS);

  it("publishes ntp stamps as captured, with the error of the nearest ntp anchor plus the crystal since", () => {
    const s = stamp("ntp", 1200, TRUTH + 200_000 + 3);
    expect(publishStamp(s, [ntp, rtc, sys], BOOT)).toEqual({
      wallMs: TRUTH + 200_003,
      tq: "ntp",
      errMs: 10 + 200_000 * CRYSTAL_PPM * 1e-6,
    });
  });

  it("grows an ntp stamp's bound with its monotonic distance from the nearest ntp anchor (crystal ppm)", () => {
    // #13 follow-up (item 3): a stamp far from its anchor claimed the anchor's 10 ms. Between
    // anchors the system clock runs on the crystal; the kernel's estimate holds only at the anchor.
    const far = stamp("ntp", 4600, TRUTH + 3_600_000);
    expect(publishStamp(far, [ntp, rtc, sys], BOOT).errMs).toBeCloseTo(
      10 + 3_600_000 * CRYSTAL_PPM * 1e-6,
      6,
    );
    // The nearest ntp anchor counts, on either side: a later one bounds an earlier stamp too.
    const later = anchor("ntp", 4700, TRUTH + 3_700_000, 4);
    expect(publishStamp(far, [ntp, later, rtc, sys], BOOT).errMs).toBeCloseTo(
      4 + 100_000 * CRYSTAL_PPM * 1e-6,
      6,
    );
    // Right at an anchor: the kernel's own estimate.
    expect(publishStamp(stamp("ntp", 1000, TRUTH), [ntp], BOOT).errMs).toBe(10);
  });

  it("corrects an unsynced stamp from a later ntp anchor of its boot, bound growing at the crystal's ppm", () => {
    const s = stamp("unsynced", 100, Y2K + 95_000);
    expect(publishStamp(s, [sys, ntp], BOOT)).toEqual({
      wallMs: TRUTH - 900_000,
      tq: "corrected",
      errMs: 10 + 900_000 * CRYSTAL_PPM * 1e-6,
    });
  });

  it("corrects an rtc stamp once the boot has an ntp anchor, using the anchors on both sides", () => {
    const s = stamp("rtc", 100, TRUTH - 900_000 + 400);
    const p = publishStamp(s, [rtc, ntp, sys], BOOT);
    expect(p.tq).toBe("corrected");
    // The RTC read 400 ms fast against NTP; the correction removes that.
    expect(Math.abs(p.wallMs - (TRUTH - 900_000))).toBeLessThanOrEqual(p.errMs);
  });

  it("keeps an rtc stamp rtc when the boot never synced, and bounds it by the unverified RTC", () => {
    const s = stamp("rtc", 100, 12345);
    const p = publishStamp(s, [rtc, sys], BOOT);
    expect(p.tq).toBe("rtc");
    expect(p.wallMs).toBe(rtc.wallMs + 90_000);
    expect(p.errMs).toBeCloseTo(RTC_UNVERIFIED_MS + 3 + 90_000 * CRYSTAL_PPM * 1e-6, 6);
  });

  it("never corrects from a system anchor", () => {
    const s = stamp("unsynced", 100, 777);
    expect(publishStamp(s, [sys], BOOT)).toEqual({
      wallMs: 777,
      tq: "unsynced",
      errMs: SYSTEM_UNCERTAINTY_MS,
    });
    expect(publishStamp(s, [], BOOT)).toEqual({ wallMs: 777, tq: "unsynced", errMs: SYSTEM_UNCERTAINTY_MS });
  });

  it("never applies another boot's anchor, even if handed one", () => {
    const s = stamp("unsynced", 100, 777, OTHER);
    expect(publishStamp(s, [ntp, rtc], BOOT)).toEqual({
      wallMs: 777,
      tq: "unsynced",
      errMs: SYSTEM_UNCERTAINTY_MS,
      note: EARLIER_BOOT_NOTE,
    });
  });

  it("corrects a stamp from an earlier boot that did get a good anchor", () => {
    const s = stamp("unsynced", 100, 777, OTHER);
    const theirs = anchor("ntp", 1000, TRUTH, 10, OTHER);
    expect(publishStamp(s, [theirs], BOOT)).toMatchObject({ wallMs: TRUTH - 900_000, tq: "corrected" });
  });

  it("picks the nearby anchor, not the tightest far one, when they disagree (sync regained with a step)", () => {
    const s = stamp("unsynced", 9 * 3600 + 1000, 0);
    const old = anchor("ntp", 1000, TRUTH - 30_000, 3);
    const fresh = anchor("ntp", 9 * 3600 + 1060, TRUTH + 9 * 3600_000 + 60_000, 20);
    const p = publishStamp(s, [old, fresh], BOOT);
    expect(p.wallMs).toBe(TRUTH + 9 * 3600_000);
    expect(p.errMs).toBeCloseTo(20 + 60_000 * CRYSTAL_PPM * 1e-6, 6);
  });

  it("is exhaustive over capture quality × anchors available × boot", () => {
    const qualities: Stamp["tq"][] = ["ntp", "rtc", "unsynced"];
    const sets: Record<string, Anchor[]> = {
      none: [],
      system: [sys],
      rtc: [sys, rtc],
      ntp: [sys, ntp],
      both: [rtc, ntp],
    };
    for (const tq of qualities)
      for (const [name, set] of Object.entries(sets))
        for (const current of [true, false]) {
          const bootId = current ? BOOT : OTHER;
          const s = stamp(tq, 100, 42, bootId);
          const anchors = set.map((a) => ({ ...a, bootId }));
          const r = publishStamp(s, anchors, BOOT);
          const canCorrect =
            (tq === "unsynced" && ["rtc", "ntp", "both"].includes(name)) ||
            (tq === "rtc" && ["ntp", "both"].includes(name));
          const expected = canCorrect ? "corrected" : tq === "rtc" && name === "rtc" ? "rtc" : tq;
          expect(r.tq, `${tq} ${name} ${bootId}`).toBe(expected);
          expect(r.note === EARLIER_BOOT_NOTE, `${tq} ${name} ${bootId}`).toBe(
            !canCorrect && !current && tq === "unsynced",
          );
          expect(r.errMs, `${tq} ${name} ${bootId}`).toBeGreaterThan(0);
          if (!canCorrect && name !== "rtc") expect(r.wallMs).toBe(42);
        }
  });
});

describe("Error model (bounds.ts)", () => {
  it("states the DS3231 at 2 ppm within 0–40 °C and 3.5 ppm outside or unknown", () => {
    expect([
      rtcPpmAt(25),
      rtcPpmAt(0),
      rtcPpmAt(40),
      rtcPpmAt(-5),
      rtcPpmAt(60),
      rtcPpmAt(undefined),
    ]).toEqual([2, 2, 2, 3.5, 3.5, 3.5]);
  });

  it("measures the crystal's rate against edge-captured RTC reads, not across an RTC write", () => {
    const rtcAt = (monoS: number, wallMs: number) => ({ ...anchor("rtc", monoS, wallMs, 2), ppm: RTC_PPM });
    // mono runs 1.00005 s per RTC second.
    const a = rtcAt(0, TRUTH);
    const b = rtcAt(100_005, TRUTH + 100_000_000);
    const r = crystalRate([a, b]);
    expect(r.ratePpm).toBeCloseTo(50, 6);
    expect(r.ppm).toBeCloseTo(4 / 100_000_000 / 1e-6 + 2 + 10, 6);
    const afterSet = rtcAt(100_010, TRUTH);
    expect(crystalRate([a, b, afterSet], [b.monoNs + 1n]).ratePpm).toBeCloseTo(50, 6);
    expect(crystalRate([a])).toEqual({ ratePpm: 0, ppm: CRYSTAL_PPM });
  });

  it("bounds an unverified RTC by RTC_UNVERIFIED_MS, growing at its ppm", () => {
    const first = { ...anchor("rtc", 10, TRUTH, 2), ppm: 2 };
    const later = { ...anchor("rtc", 100_010, TRUTH + 100_000_000, 2), ppm: 2 };
    const [e1, e2] = effectiveAnchors([first, later]);
    expect(e1!.err_ms).toBeCloseTo(RTC_UNVERIFIED_MS + 2, 6);
    expect(e2!.err_ms).toBeGreaterThan(RTC_UNVERIFIED_MS + 2 + 199);
    expect(e2!.err_ms).toBeLessThan(RTC_UNVERIFIED_MS + 2 + 201);
  });

  it("closes an RTC's offset from both ends when NTP checks it before and after", () => {
    // The RTC gains exactly 2 ppm; NTP checks it at both ends (±10 ms).
    const L = 1_000_000; // s
    const anchors: Anchor[] = [anchor("ntp", 0, TRUTH, 10), anchor("ntp", L, TRUTH + L * 1000, 10)];
    for (let t = 0; t <= L; t += L / 10)
      anchors.push({ ...anchor("rtc", t, TRUTH + t * 1000 + t * 1000 * 2e-6, 1), ppm: 2 });
    const eff = effectiveAnchors(anchors).filter((a) => a.src === "rtc");
    for (const a of eff) {
      const truth = TRUTH + a.mono_ms;
      expect(Math.abs(a.wall_ms - truth)).toBeLessThanOrEqual(a.err_ms);
      expect(Math.abs(a.wall_ms - truth)).toBeLessThan(2);
    }
  });

  it("does not carry an RTC's bound across a write to the RTC", () => {
    const anchors: Anchor[] = [
      anchor("ntp", 0, TRUTH, 10),
      { ...anchor("rtc", 1, TRUTH + 1000, 1), ppm: 2 },
      anchor("rtc-set", 2, TRUTH + 2000, 0),
      { ...anchor("rtc", 3, TRUTH + 3000 + 5000, 1), ppm: 2 },
    ];
    const [, before, after] = effectiveAnchors(anchors);
    expect(before!.err_ms).toBeLessThan(20);
    // After the write only the ntp anchor bounds it directly (a 5 s jump is not hidden).
    expect(Math.abs(after!.wall_ms - (TRUTH + 3000))).toBeLessThanOrEqual(after!.err_ms);
  });

  it("compacts a boot's anchors to the bound, evenly, keeping ends, NTP checks and RTC writes", () => {
    const anchors: Anchor[] = [anchor("ntp", 0, TRUTH), { ...anchor("rtc", 1, TRUTH, 2) }];
    for (let i = 1; i <= 1000; i++) anchors.push(anchor("rtc", i * 600, TRUTH + i * 600_000, 2));
    anchors.push(
      anchor("rtc-set", 300_001, TRUTH, 0),
      anchor("ntp", 600_100, TRUTH),
      anchor("rtc", 600_101, TRUTH, 2),
    );
    anchors.push(anchor("rtc", 5, TRUTH, 500));
    const kept = compactAnchors(anchors, 64);
    expect(kept).toHaveLength(64);
    const has = (src: AnchorSource, s: number) =>
      kept.some((a) => a.source === src && a.monoNs === BigInt(s) * S);
    expect(has("ntp", 0) && has("rtc", 1) && has("rtc-set", 300_001) && has("rtc", 600_101)).toBe(true);
    expect(kept.some((a) => a.uncertaintyMs === 500)).toBe(false);
    const gaps = kept.slice(1).map((a, i) => Number(a.monoNs - kept[i]!.monoNs) / 1e9);
    expect(Math.max(...gaps)).toBeLessThan((600_101 / 64) * 2.5);
  });
});
