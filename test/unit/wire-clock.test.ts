import { describe, expect, it } from "vitest";
import {
  bestEstimate,
  type ClockMessage,
  ClockMessageError,
  clockTopic,
  decodeClockMessage,
  encodeClockMessage,
  restamp,
  type WireAnchor,
} from "../../src/wire/index.ts";

const BOOT = "3f2a9c1e-0000-4000-8000-000000000001";
const T0 = Date.UTC(2026, 10, 30, 0, 0, 0);

function message(anchors: WireAnchor[]): ClockMessage {
  return { v: 1, device: "pi-7", boot: BOOT, anchors };
}

describe("Clock message codec", () => {
  it("round-trips, dropping a zero rate and rounding to microseconds", () => {
    const msg = message([
      { mono_ms: 1234.5678901, wall_ms: T0, src: "ntp", err_ms: 12, ppm: 100, rate_ppm: 0 },
      { mono_ms: 601234.5, wall_ms: T0 + 600_000.25, src: "rtc", err_ms: 4.1, ppm: 7, rate_ppm: 49.8 },
    ]);
    const text = encodeClockMessage(msg);
    expect(text).not.toContain('rate_ppm":0');
    const back = decodeClockMessage(new TextEncoder().encode(text));
    expect(back.anchors[0]).toEqual({ mono_ms: 1234.568, wall_ms: T0, src: "ntp", err_ms: 12, ppm: 100 });
    expect(back.anchors[1]).toEqual(msg.anchors[1]);
    expect(back).toMatchObject({ v: 1, device: "pi-7", boot: BOOT });
  });

  it("ignores keys it does not know, at the top and per anchor (contract 2 stays open to additions)", () => {
    const text = JSON.stringify({
      v: 1,
      device: "pi-7",
      boot: BOOT,
      rtc_trust: { ppm: 2 },
      anchors: [{ mono_ms: 1, wall_ms: T0, src: "rtc", err_ms: 3, ppm: 12, rtc_ppm: 2, temp_c: 24.5 }],
    });
    expect(decodeClockMessage(text)).toEqual(
      message([{ mono_ms: 1, wall_ms: T0, src: "rtc", err_ms: 3, ppm: 12 }]),
    );
  });

  it("names the topic per boot", () => {
    expect(clockTopic("fieldrelay", "pi-7", BOOT)).toBe(`fieldrelay/pi-7/clock/${BOOT}`);
  });

  it.each([
    ["not json", "payload"],
    ["[]", "payload"],
    ['{"v":2,"device":"d","boot":"b","anchors":[]}', "v"],
    ['{"v":1,"device":"","boot":"b","anchors":[]}', "device"],
    ['{"v":1,"device":"d","anchors":[]}', "boot"],
    ['{"v":1,"device":"d","boot":"b","anchors":{}}', "anchors"],
    ['{"v":1,"device":"d","boot":"b","anchors":[1]}', "anchors[0]"],
    ['{"v":1,"device":"d","boot":"b","anchors":[{"src":"gps"}]}', "anchors[0].src"],
    ['{"v":1,"device":"d","boot":"b","anchors":[{"src":"ntp","mono_ms":-1}]}', "anchors[0].mono_ms"],
    [
      '{"v":1,"device":"d","boot":"b","anchors":[{"src":"ntp","mono_ms":1,"wall_ms":2,"err_ms":"3","ppm":1}]}',
      "anchors[0].err_ms",
    ],
    [
      '{"v":1,"device":"d","boot":"b","anchors":[{"src":"rtc","mono_ms":1,"wall_ms":2,"err_ms":3,"ppm":1,"rate_ppm":null}]}',
      "anchors[0].rate_ppm",
    ],
  ])("refuses %s with a ClockMessageError naming %s", (payload, field) => {
    let caught: unknown;
    try {
      decodeClockMessage(payload);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ClockMessageError);
    expect((caught as ClockMessageError).context.field).toBe(field);
  });
});

describe("Re-stamp rule", () => {
  // A crystal running +50 ppm: mono advances 1.00005 ms per true ms.
  const rate = 50;
  const mono = (trueMs: number) => trueMs * (1 + rate * 1e-6);
  const anchorAt = (trueMs: number, src: WireAnchor["src"], err: number, ppm = 100): WireAnchor => ({
    mono_ms: mono(trueMs),
    wall_ms: T0 + trueMs,
    src,
    err_ms: err,
    ppm,
  });

  it("intersects the anchors around a reading: tighter than either, and the truth is inside", () => {
    const anchors = [anchorAt(0, "rtc", 3), anchorAt(3_600_000, "ntp", 10)];
    const e = bestEstimate(mono(1_000_000), anchors)!;
    expect(e.from).toHaveLength(2);
    expect(e.errMs).toBeLessThan(3 + 1_000_000 * 1.00005 * 100e-6);
    expect(Math.abs(e.wallMs - (T0 + 1_000_000))).toBeLessThanOrEqual(e.errMs);
  });

  it("follows the estimated crystal rate when the anchors carry it", () => {
    const anchors = [{ ...anchorAt(0, "rtc", 3, 5), rate_ppm: rate }];
    const e = bestEstimate(mono(600_000), anchors)!;
    expect(Math.abs(e.wallMs - (T0 + 600_000))).toBeLessThan(0.01);
    expect(e.errMs).toBeCloseTo(3 + 600_000 * 1.00005 * 5e-6, 3);
  });

  it("falls back to the tightest single anchor when the anchors contradict each other", () => {
    const anchors = [anchorAt(0, "ntp", 1, 1), { ...anchorAt(1000, "ntp", 1, 1), wall_ms: T0 + 31_000 }];
    const e = bestEstimate(mono(900), anchors)!;
    expect(e.from).toEqual([anchors[1]]);
  });

  it("extrapolates from the nearest anchor when that bound is smallest, and the bound holds", () => {
    const anchors = [anchorAt(0, "ntp", 10), anchorAt(9 * 3_600_000, "ntp", 10)];
    const trueMs = 9 * 3_600_000 + 60_000;
    const e = bestEstimate(mono(trueMs), anchors)!;
    expect(e.from).toEqual([anchors[1]]);
    expect(Math.abs(e.wallMs - (T0 + trueMs))).toBeLessThanOrEqual(e.errMs);
  });

  it("returns undefined without anchors", () => {
    expect(bestEstimate(5, [])).toBeUndefined();
  });

  const unsynced = (trueMs: number) => ({
    ts: "2000-01-01T00:00:00.000Z",
    tq: "unsynced",
    te_ms: 3_155_760_000_000,
    boot: BOOT,
    mono_ms: mono(trueMs),
  });

  it("re-stamps an unsynced reading of the same boot to within 50 ms", () => {
    const msg = message([anchorAt(0, "rtc", 4), anchorAt(600_000, "rtc", 4), anchorAt(1_200_000, "ntp", 12)]);
    const r = restamp(unsynced(900_000), msg)!;
    expect(r.tq).toBe("corrected");
    expect(Math.abs(r.wall_ms - (T0 + 900_000))).toBeLessThan(50);
    expect(r.te_ms).toBeLessThan(50);
    expect(r.ts).toBe(new Date(Math.round(r.wall_ms)).toISOString());
  });

  it("is idempotent and order-independent: an older message never worsens a newer stamp", () => {
    const older = message([anchorAt(0, "rtc", 900)]);
    const newer = message([anchorAt(0, "rtc", 900), anchorAt(1_000_000, "ntp", 10)]);
    const reading = unsynced(990_000);
    const a = restamp(reading, newer)!;
    const applied = { ...reading, ...a };
    expect(restamp(applied, newer)).toBeUndefined();
    expect(restamp(applied, older)).toBeUndefined();
    const b = restamp(reading, older)!;
    expect(b.te_ms).toBeGreaterThan(a.te_ms);
    const c = restamp({ ...reading, ...b }, newer)!;
    expect(c.te_ms).toBe(a.te_ms);
    expect(c.wall_ms).toBe(a.wall_ms);
  });

  it("never applies a message to another boot, an ntp reading, or a reading without mono_ms", () => {
    const msg = message([anchorAt(0, "ntp", 10)]);
    expect(restamp({ ...unsynced(10), boot: "other" }, msg)).toBeUndefined();
    expect(restamp({ ...unsynced(10), tq: "ntp" }, msg)).toBeUndefined();
    expect(restamp({ ...unsynced(10), mono_ms: undefined }, msg)).toBeUndefined();
  });
});
