import { describe, expect, it } from "vitest";
import {
  bestAnchor,
  bestPerSource,
  EARLIER_BOOT_NOTE,
  publishStamp,
  SYSTEM_UNCERTAINTY_MS,
  wallFromAnchor,
} from "../../src/clock/anchors.ts";
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

describe("bestAnchor", () => {
  it("returns undefined without anchors", () => {
    expect(bestAnchor([])).toBeUndefined();
  });

  it("ranks ntp above rtc above system, whatever the uncertainty or age", () => {
    const sys = anchor("system", 900, Y2K, 1);
    const rtc = anchor("rtc", 800, TRUTH, 1000);
    const ntp = anchor("ntp", 10, TRUTH, 5000);
    for (const order of [
      [sys, rtc, ntp],
      [ntp, rtc, sys],
      [rtc, ntp, sys],
    ])
      expect(bestAnchor(order)).toBe(ntp);
    expect(bestAnchor([sys, rtc])).toBe(rtc);
    expect(bestAnchor([rtc, sys])).toBe(rtc);
    expect(bestAnchor([sys])).toBe(sys);
  });

  it("prefers the smallest uncertainty within a source, then the newest", () => {
    const wide = anchor("ntp", 500, TRUTH, 50);
    const narrowOld = anchor("ntp", 100, TRUTH, 5);
    const narrowNew = anchor("ntp", 200, TRUTH, 5);
    expect(bestAnchor([wide, narrowOld, narrowNew])).toBe(narrowNew);
    expect(bestAnchor([narrowNew, narrowOld, wide])).toBe(narrowNew);
    expect(bestAnchor([wide, narrowOld])).toBe(narrowOld);
  });
});

describe("wallFromAnchor", () => {
  it("adds the monotonic distance in ms, in either direction, to sub-ms precision", () => {
    const a = anchor("ntp", 1000, TRUTH);
    expect(wallFromAnchor(a, 1000n * S + 1_500_000n)).toBe(TRUTH + 1.5);
    expect(wallFromAnchor(a, 400n * S)).toBe(TRUTH - 600_000);
  });
});

describe("publishStamp (anchor rules)", () => {
  const ntp = anchor("ntp", 1000, TRUTH);
  const rtc = anchor("rtc", 10, TRUTH - 990_000 + 400, 1000);
  const sys = anchor("system", 5, Y2K, SYSTEM_UNCERTAINTY_MS);

  it("publishes ntp stamps as captured, even when other anchors exist", () => {
    const s = stamp("ntp", 1200, TRUTH + 200_000 + 3);
    expect(publishStamp(s, [ntp, rtc, sys], BOOT)).toEqual({ wallMs: TRUTH + 200_003, tq: "ntp" });
  });

  it("corrects an unsynced stamp from a later ntp anchor of its boot: wall = anchor.wall + Δmono", () => {
    const s = stamp("unsynced", 100, Y2K + 95_000);
    expect(publishStamp(s, [sys, ntp], BOOT)).toEqual({ wallMs: TRUTH - 900_000, tq: "corrected" });
  });

  it("corrects an rtc stamp from an ntp anchor", () => {
    const s = stamp("rtc", 100, TRUTH - 900_000 + 400);
    expect(publishStamp(s, [rtc, ntp, sys], BOOT)).toEqual({ wallMs: TRUTH - 900_000, tq: "corrected" });
  });

  it("corrects an unsynced stamp from an rtc anchor when no ntp anchor exists", () => {
    const s = stamp("unsynced", 110, Y2K);
    expect(publishStamp(s, [sys, rtc], BOOT)).toEqual({ wallMs: rtc.wallMs + 100_000, tq: "corrected" });
  });

  it("prefers the ntp anchor over the rtc anchor when correcting an unsynced stamp", () => {
    const s = stamp("unsynced", 110, Y2K);
    expect(publishStamp(s, [rtc, ntp], BOOT).wallMs).toBe(TRUTH - 890_000);
  });

  it("keeps an rtc stamp when the boot only has rtc and system anchors", () => {
    const s = stamp("rtc", 100, 12345);
    expect(publishStamp(s, [rtc, sys], BOOT)).toEqual({ wallMs: 12345, tq: "rtc" });
  });

  it("never corrects from a system anchor", () => {
    const s = stamp("unsynced", 100, 777);
    expect(publishStamp(s, [sys], BOOT)).toEqual({ wallMs: 777, tq: "unsynced" });
    expect(publishStamp(s, [], BOOT)).toEqual({ wallMs: 777, tq: "unsynced" });
  });

  it("never applies another boot's anchor, even if handed one", () => {
    const s = stamp("unsynced", 100, 777, OTHER);
    expect(publishStamp(s, [ntp, rtc], BOOT)).toEqual({
      wallMs: 777,
      tq: "unsynced",
      note: EARLIER_BOOT_NOTE,
    });
  });

  it("corrects a stamp from an earlier boot that did get a good anchor", () => {
    const s = stamp("unsynced", 100, 777, OTHER);
    const theirs = anchor("ntp", 1000, TRUTH, 10, OTHER);
    expect(publishStamp(s, [theirs], BOOT)).toEqual({ wallMs: TRUTH - 900_000, tq: "corrected" });
  });

  it("notes unsynced stamps of an earlier boot that never got a good anchor", () => {
    const s = stamp("unsynced", 100, 777, OTHER);
    const theirs = anchor("system", 1, Y2K, SYSTEM_UNCERTAINTY_MS, OTHER);
    expect(publishStamp(s, [theirs], BOOT)).toEqual({ wallMs: 777, tq: "unsynced", note: EARLIER_BOOT_NOTE });
  });

  it("gives no note to an earlier boot's rtc stamp (it was anchored to the RTC)", () => {
    const s = stamp("rtc", 100, 777, OTHER);
    expect(publishStamp(s, [], BOOT)).toEqual({ wallMs: 777, tq: "rtc" });
  });

  it("uses the best ntp anchor (smallest uncertainty, then newest) when several exist", () => {
    const s = stamp("unsynced", 100, 0);
    const loose = anchor("ntp", 2000, TRUTH + 5_000, 80);
    const tightOld = anchor("ntp", 1000, TRUTH, 3);
    const tightNew = anchor("ntp", 1500, TRUTH + 500_010, 3);
    expect(publishStamp(s, [loose, tightOld, tightNew], BOOT).wallMs).toBe(TRUTH + 500_010 - 1_400_000);
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
          expect(r.tq, `${tq} ${name} ${bootId}`).toBe(canCorrect ? "corrected" : tq);
          expect(r.note === EARLIER_BOOT_NOTE, `${tq} ${name} ${bootId}`).toBe(
            !canCorrect && !current && tq === "unsynced",
          );
          if (!canCorrect) expect(r.wallMs).toBe(42);
        }
  });
});

describe("bestPerSource", () => {
  it("keeps one anchor per source and gives publishStamp the same answers as the full list", () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const sources: AnchorSource[] = ["system", "rtc", "ntp"];
    for (let trial = 0; trial < 200; trial++) {
      const all = Array.from({ length: 1 + Math.floor(rnd() * 12) }, () =>
        anchor(
          sources[Math.floor(rnd() * 3)]!,
          Math.floor(rnd() * 5000),
          TRUTH + Math.floor(rnd() * 1e6),
          Math.floor(rnd() * 4),
        ),
      );
      const kept = bestPerSource(all);
      expect(new Set(kept.map((a) => a.source)).size).toBe(kept.length);
      expect(bestAnchor(kept)).toBe(bestAnchor(all));
      for (const tq of ["rtc", "unsynced"] as const) {
        const s = stamp(tq, Math.floor(rnd() * 5000), 1);
        expect(publishStamp(s, kept, BOOT)).toEqual(publishStamp(s, all, BOOT));
      }
    }
  });
});
