import { describe, expect, it } from "vitest";
import {
  Ds3231Error,
  decodeAging,
  decodeHours,
  decodeTemperature,
  decodeTime,
  encodeHours,
  encodeTemperature,
  encodeTime,
  fromBcd,
  toBcd,
} from "../../src/clock/rtc/codec.ts";

describe("DS3231 BCD", () => {
  it("round-trips 0-99 and matches the datasheet's nibble layout", () => {
    for (let n = 0; n <= 99; n++) expect(fromBcd(toBcd(n))).toBe(n);
    expect(toBcd(59)).toBe(0x59);
    expect(fromBcd(0x07)).toBe(7);
  });

  it("rejects nibbles above 9 and values outside 0-99", () => {
    expect(() => fromBcd(0x1a)).toThrow(Ds3231Error);
    expect(() => fromBcd(0xa1)).toThrow(/not a BCD/);
    expect(() => toBcd(100)).toThrow(RangeError);
    expect(() => toBcd(-1)).toThrow(RangeError);
  });
});

describe("DS3231 hours register", () => {
  it("converts every hour to and from 12-hour mode (bit 6) with AM/PM (bit 5)", () => {
    for (let h = 0; h < 24; h++) {
      expect(decodeHours(encodeHours(h, true))).toBe(h);
      expect(decodeHours(encodeHours(h, false))).toBe(h);
    }
  });

  it("encodes midnight as 12 AM, noon as 12 PM, 23h as 11 PM", () => {
    expect(encodeHours(0, true)).toBe(0x40 | 0x12);
    expect(encodeHours(12, true)).toBe(0x40 | 0x20 | 0x12);
    expect(encodeHours(23, true)).toBe(0x40 | 0x20 | 0x11);
    expect(encodeHours(1, true)).toBe(0x40 | 0x01);
    expect(encodeHours(23, false)).toBe(0x23);
  });

  it("rejects impossible hours", () => {
    expect(() => decodeHours(0x24)).toThrow(/hour 24/);
    expect(() => decodeHours(0x40 | 0x13)).toThrow(/hour 13/);
    expect(() => decodeHours(0x40)).toThrow(/hour 0/);
  });
});

describe("DS3231 time registers 00h-06h", () => {
  it("encodes a known instant byte for byte", () => {
    // Wednesday 2026-11-25 13:07:09 UTC; day-of-week Sunday = 1 → Wednesday = 4.
    expect([...encodeTime(Date.UTC(2026, 10, 25, 13, 7, 9, 750))]).toEqual([
      0x09, 0x07, 0x13, 4, 0x25, 0x11, 0x26,
    ]);
    expect([...encodeTime(Date.UTC(2026, 10, 25, 13, 7, 9), true)][2]).toBe(0x40 | 0x20 | 0x01);
  });

  it("sets the century bit (month bit 7) for 2100-2199", () => {
    const r = encodeTime(Date.UTC(2100, 0, 1));
    expect(r[5]).toBe(0x80 | 0x01);
    expect(r[6]).toBe(0x00);
    expect(decodeTime(r)).toBe(Date.UTC(2100, 0, 1));
    expect(encodeTime(Date.UTC(2099, 11, 31, 23, 59, 59))[5]).toBe(0x12);
  });

  it("round-trips instants across the whole range, in both hour modes (whole seconds)", () => {
    const start = Date.UTC(2000, 0, 1);
    const end = Date.UTC(2199, 11, 31, 23, 59, 59);
    for (let i = 0; i <= 2000; i++) {
      const t = Math.floor((start + ((end - start) * i) / 2000) / 1000) * 1000;
      expect(decodeTime(encodeTime(t, false))).toBe(t);
      expect(decodeTime(encodeTime(t, true))).toBe(t);
    }
  });

  it("refuses times a DS3231 cannot hold, with a hint", () => {
    expect(() => encodeTime(Date.UTC(1999, 11, 31, 23, 59, 59))).toThrow(/outside what a DS3231 holds/);
    expect(() => encodeTime(Date.UTC(2200, 0, 1))).toThrow(Ds3231Error);
  });

  it("rejects impossible dates (garbage after power loss)", () => {
    expect(() => decodeTime(Uint8Array.of(0, 0, 0, 1, 0x31, 0x02, 0x26))).toThrow(
      /impossible date 2026-2-31/,
    );
    expect(() => decodeTime(Uint8Array.of(0, 0, 0, 1, 0x00, 0x01, 0x26))).toThrow(Ds3231Error);
    expect(() => decodeTime(Uint8Array.of(0, 0, 0, 1, 0x01, 0x13, 0x26))).toThrow(Ds3231Error);
    expect(decodeTime(Uint8Array.of(0, 0, 0, 1, 0x29, 0x02, 0x24))).toBe(Date.UTC(2024, 1, 29));
  });
});

describe("DS3231 temperature and aging registers", () => {
  it("decodes signed 0.25 °C steps from 11h (integer) and 12h bits 7-6", () => {
    expect(decodeTemperature(0x19, 0x40)).toBe(25.25);
    expect(decodeTemperature(0x19, 0xc0)).toBe(25.75);
    expect(decodeTemperature(0xff, 0xc0)).toBe(-0.25);
    expect(decodeTemperature(0xe7, 0x00)).toBe(-25);
    expect(decodeTemperature(0x7f, 0xc0)).toBe(127.75);
    expect(decodeTemperature(0x80, 0x00)).toBe(-128);
  });

  it("round-trips every 0.25 °C step from -128 to 127.75", () => {
    for (let q = -512; q <= 511; q++) expect(decodeTemperature(...encodeTemperature(q / 4))).toBe(q / 4);
  });

  it("reads the aging offset as a signed byte", () => {
    expect(decodeAging(0x00)).toBe(0);
    expect(decodeAging(0x7f)).toBe(127);
    expect(decodeAging(0x80)).toBe(-128);
    expect(decodeAging(0xfd)).toBe(-3);
  });
});
