import { describe, expect, it } from "vitest";
import {
  formatRanges,
  markEvents,
  Obligations,
  parseRanges,
  planCrashPoints,
  prng,
} from "../crash/support/crash-points.ts";
import {
  decodeEntry,
  decodeSuper,
  FLAG_DISCARD,
  FLAG_FLUSH,
  FLAG_FUA,
  FLAG_MARK,
  isDurabilityPoint,
  type LogEntry,
  LogFormatError,
  writesData,
} from "../crash/support/log-writes.ts";

const SS = 512;

function superBlock(nrEntries: number, sectorSize = SS, magic = 0x6a736677736872n): Uint8Array {
  const b = new Uint8Array(sectorSize);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, magic, true);
  v.setBigUint64(8, 1n, true);
  v.setBigUint64(16, BigInt(nrEntries), true);
  v.setUint32(24, sectorSize, true);
  return b;
}

function header(sector: number, nrSectors: number, flags: number, mark?: string): Uint8Array {
  const b = new Uint8Array(SS);
  const v = new DataView(b.buffer);
  const text = mark === undefined ? new Uint8Array() : new TextEncoder().encode(mark);
  v.setBigUint64(0, BigInt(sector), true);
  v.setBigUint64(8, BigInt(nrSectors), true);
  v.setBigUint64(16, BigInt(flags), true);
  v.setBigUint64(24, BigInt(mark === undefined ? nrSectors * SS : text.length), true);
  b.set(text, 32);
  return b;
}

/** A log as the kernel lays it out: super, then header (+ data sectors) per entry. */
function decodeAll(parts: Array<{ h: Uint8Array; data?: number }>): LogEntry[] {
  const entries: LogEntry[] = [];
  let offset = SS;
  parts.forEach((p, i) => {
    const { entry, next } = decodeEntry(p.h, offset, i, SS);
    entries.push(entry);
    offset = next;
  });
  return entries;
}

describe("dm-log-writes log format", () => {
  it("decodes the super block and refuses anything else", () => {
    expect(decodeSuper(superBlock(42))).toEqual({ nrEntries: 42, sectorSize: 512 });
    expect(decodeSuper(superBlock(1, 4096))).toEqual({ nrEntries: 1, sectorSize: 4096 });
    expect(() => decodeSuper(superBlock(1, SS, 0x1234n))).toThrow(LogFormatError);
    expect(() => decodeSuper(superBlock(1, 1000))).toThrow(/power of two/);
    expect(() => decodeSuper(new Uint8Array(10))).toThrow(/28/);
  });

  it("decodes writes, flushes, FUA, discards and marks, and where the next entry starts", () => {
    const w = decodeEntry(header(100, 8, 0), 512, 0, SS);
    expect(w.entry).toMatchObject({ kind: "write", sector: 100, nrSectors: 8, dataOffset: 1024 });
    expect(w.next).toBe(512 + 512 * 9);
    const f = decodeEntry(header(0, 0, FLAG_FLUSH), 4096, 1, SS);
    expect(f.entry.kind).toBe("flush");
    expect(f.next).toBe(4096 + 512);
    const fua = decodeEntry(header(7, 1, FLAG_FLUSH | FLAG_FUA), 0, 2, SS);
    expect(fua.entry.kind).toBe("write");
    expect(isDurabilityPoint(fua.entry)).toBe(true);
    expect(writesData(fua.entry)).toBe(true);
    expect(fua.next).toBe(1024);
    const d = decodeEntry(header(50, 64, FLAG_DISCARD), 0, 3, SS);
    expect(d.entry.kind).toBe("discard");
    expect(d.next).toBe(512); // no data follows a discard
    const m = decodeEntry(header(0, 0, FLAG_MARK, "a1-5;b3"), 0, 4, SS);
    expect(m.entry).toMatchObject({ kind: "mark", mark: "a1-5;b3" });
    expect(m.next).toBe(512);
  });

  it("refuses a mark longer than its sector", () => {
    const h = header(0, 0, FLAG_MARK, "x");
    new DataView(h.buffer).setBigUint64(24, 600n, true);
    expect(() => decodeEntry(h, 0, 0, SS)).toThrow(/does not fit/);
  });
});

describe("seq ranges in marks", () => {
  it("round-trips and compresses runs", () => {
    expect(formatRanges([5, 1, 2, 3, 9, 10, 3])).toBe("1-3,5,9-10");
    expect(parseRanges("1-3,5,9-10")).toEqual([1, 2, 3, 5, 9, 10]);
    expect(parseRanges("")).toEqual([]);
    expect(() => parseRanges("1-x")).toThrow(/bad seq range/);
  });
});

describe("crash point planning", () => {
  const log = decodeAll([
    { h: header(10, 1, 0) }, // 0 write
    { h: header(0, 0, FLAG_FLUSH) }, // 1 flush
    { h: header(0, 0, FLAG_MARK, "a1-3") }, // 2 mark
    { h: header(11, 1, 0) }, // 3 write (unflushed until 5)
    { h: header(12, 1, 0) }, // 4 write
    { h: header(13, 1, FLAG_FLUSH | FLAG_FUA) }, // 5 journal commit block
    { h: header(14, 1, FLAG_FUA) }, // 6 FUA
    { h: header(0, 0, FLAG_MARK, "b1-2;pdown") }, // 7
  ]);

  it("has a flush point at every FLUSH and FUA entry", () => {
    const points = planCrashPoints(log, { sampleRate: 0, seed: 1 });
    expect(points.map((p) => [p.kind, p.at, p.marksUpTo])).toEqual([
      ["flush", 1, 1],
      ["flush", 5, 5],
      ["flush", 6, 6],
    ]);
  });

  it("samples between flushes: only unflushed writes of that interval, marks up to its last mark", () => {
    const points = planCrashPoints(log, { sampleRate: 1, seed: 3 });
    const samples = points.filter((p) => p.kind === "sample");
    const first = samples.find((p) => p.at === 1)!;
    expect(first.marksUpTo).toBe(2);
    for (const i of first.keep) expect([3, 4]).toContain(i);
    const last = samples.find((p) => p.at === 6)!;
    expect(last.keep).toEqual([]);
    expect(last.marksUpTo).toBe(7);
    // Log order: a sample right after its flush point, and mark horizons never go back.
    const horizons = points.map((p) => p.marksUpTo);
    expect([...horizons].sort((a, b) => a - b)).toEqual(horizons);
  });

  it("takes several samples per interval at rates above 1, horizons still in order", () => {
    const points = planCrashPoints(log, { sampleRate: 4, seed: 5 });
    expect(points.filter((p) => p.kind === "sample" && p.at === 1)).toHaveLength(4);
    const horizons = points.map((p) => p.marksUpTo);
    expect([...horizons].sort((a, b) => a - b)).toEqual(horizons);
  });

  it("is reproducible from its seed and keeps about half of the unflushed writes", () => {
    const many = decodeAll(
      Array.from({ length: 2001 }, (_, i) => ({
        h: i % 20 === 0 ? header(0, 0, FLAG_FLUSH) : header(i, 1, 0),
      })),
    );
    const a = planCrashPoints(many, { sampleRate: 1, seed: 7 });
    const b = planCrashPoints(many, { sampleRate: 1, seed: 7 });
    expect(a).toEqual(b);
    const kept = a.filter((p) => p.kind === "sample").reduce((n, p) => n + p.keep.length, 0);
    expect(kept / (100 * 19)).toBeGreaterThan(0.4);
    expect(kept / (100 * 19)).toBeLessThan(0.6);
  });

  it("spreads a capped number of flush points over the whole log", () => {
    const many = decodeAll(Array.from({ length: 1000 }, () => ({ h: header(0, 0, FLAG_FLUSH) })));
    const points = planCrashPoints(many, { sampleRate: 0, seed: 1, maxFlushPoints: 10 });
    expect(points.map((p) => p.at)).toEqual([0, 100, 200, 300, 400, 500, 600, 700, 800, 900]);
  });

  it("prng gives numbers in [0, 1)", () => {
    const r = prng(99);
    for (let i = 0; i < 1000; i++) {
      const x = r();
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
    }
  });
});

describe("what the queue owes at a crash point", () => {
  const entries = decodeAll([
    { h: header(0, 0, FLAG_MARK, "pone;a1-4") }, // 0
    { h: header(0, 0, FLAG_MARK, "b1-2") }, // 1
    { h: header(0, 0, FLAG_MARK, "b9;a5,9") }, // 2: 9 delivered before its 201
    { h: header(0, 0, FLAG_MARK, "ptwo;a20") }, // 3
  ]);

  it("owes every acknowledged seq the broker has not received, except evictable ones", () => {
    const o = new Obligations(markEvents(entries), new Set([20]));
    o.advanceTo(0);
    expect([...o.owed].sort()).toEqual([1, 2, 3, 4]);
    expect(o.phase).toBe("one");
    o.advanceTo(1);
    expect([...o.owed].sort()).toEqual([3, 4]);
    o.advanceTo(2);
    expect([...o.owed].sort()).toEqual([3, 4, 5]);
    expect(o.issuedHigh).toBe(9);
    o.advanceTo(3);
    expect([...o.owed].sort()).toEqual([3, 4, 5]);
    expect(o.issuedHigh).toBe(20);
    expect(o.phase).toBe("two");
  });
});
