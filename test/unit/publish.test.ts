import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  availableTokens,
  backoffDelayS,
  buildEnvelope,
  createTokenBucket,
  encodeEnvelope,
  loadTls,
  msUntilToken,
  PublishTlsFileError,
  statusTopic,
  streamTopic,
  takeTokens,
  topicMatches,
} from "../../src/publish/index.ts";
import { MemoryQueue, reading } from "../support/memory-queue.ts";

describe("backoffDelayS (exponential backoff, full jitter)", () => {
  const mins = [0.1, 0.5, 1, 2, 5];
  const maxes = [1, 10, 60, 300, 86_400];
  const randoms = [0, 0.1, 0.5, 0.75, 0.999_999];

  it("is random() times min(max, min·2^attempt) for every attempt, bound and random value", () => {
    for (const minS of mins)
      for (const maxS of maxes) {
        if (maxS < minS) continue;
        for (let attempt = 0; attempt <= 64; attempt++)
          for (const r of randoms) {
            const expected = r * Math.min(maxS, minS * 2 ** attempt);
            expect(backoffDelayS(attempt, minS, maxS, () => r)).toBeCloseTo(expected, 12);
          }
      }
  });

  it("doubles its ceiling per attempt until it reaches max_backoff_s, then stays there", () => {
    const ceilings = Array.from({ length: 10 }, (_, a) => backoffDelayS(a, 1, 60, () => 1));
    expect(ceilings).toEqual([1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
  });

  it("never exceeds max_backoff_s, even for huge attempt counts", () => {
    for (const attempt of [100, 1023, 1024, 5000, 1e6])
      expect(backoffDelayS(attempt, 1, 60, () => 0.999)).toBeLessThanOrEqual(60);
  });

  it("is 0 when random() is 0 (full jitter reaches down to zero)", () => {
    expect(backoffDelayS(7, 1, 60, () => 0)).toBe(0);
  });

  it("clamps a random source that strays outside [0, 1]", () => {
    expect(backoffDelayS(0, 2, 60, () => 1.5)).toBe(2);
    expect(backoffDelayS(0, 2, 60, () => -1)).toBe(0);
  });

  it("refuses a negative or fractional attempt and inverted bounds", () => {
    expect(() => backoffDelayS(-1, 1, 60, Math.random)).toThrow(RangeError);
    expect(() => backoffDelayS(1.5, 1, 60, Math.random)).toThrow(RangeError);
    expect(() => backoffDelayS(0, 10, 1, Math.random)).toThrow(RangeError);
    expect(() => backoffDelayS(0, 0, 1, Math.random)).toThrow(RangeError);
  });
});

describe("Token bucket (mqtt.max_rate)", () => {
  it("is unlimited when the rate is 0", () => {
    const b = createTokenBucket(0, 0);
    expect(takeTokens(b, 1_000_000, 0)).toBe(1_000_000);
    expect(availableTokens(b, 0)).toBe(Number.POSITIVE_INFINITY);
    expect(msUntilToken(b, 0)).toBe(0);
  });

  it("allows a burst of one second's worth, then refills at the rate", () => {
    const b = createTokenBucket(10, 0);
    expect(takeTokens(b, 100, 0)).toBe(10);
    expect(takeTokens(b, 1, 0)).toBe(0);
    expect(msUntilToken(b, 0)).toBe(100);
    expect(takeTokens(b, 100, 250)).toBe(2);
    expect(availableTokens(b, 1250)).toBe(10); // capped at capacity
  });

  it("keeps fractional tokens between calls so the long-run rate is exact", () => {
    const b = createTokenBucket(3, 0);
    takeTokens(b, 3, 0);
    let sent = 0;
    for (let t = 1; t <= 10_000; t += 7) sent += takeTokens(b, 1000, t);
    // 3/s over ~10 s, never more.
    expect(sent).toBeGreaterThanOrEqual(29);
    expect(sent).toBeLessThanOrEqual(30);
  });

  it("has a capacity of at least one token for rates below 1/s", () => {
    const b = createTokenBucket(0.5, 0);
    expect(takeTokens(b, 5, 0)).toBe(1);
    expect(msUntilToken(b, 0)).toBe(2000);
    expect(takeTokens(b, 5, 2000)).toBe(1);
  });

  it("ignores a clock that goes backwards", () => {
    const b = createTokenBucket(10, 1000);
    takeTokens(b, 10, 1000);
    expect(takeTokens(b, 10, 500)).toBe(0);
  });
});

describe("Message envelope", () => {
  const row = { ...reading({ values: { temperature_c: 21.5, door: true } }), seq: 42 };

  it("carries seq, device, stream, an ISO-8601 UTC time with ms, quality and values", () => {
    const env = buildEnvelope(row, "pi-7", {
      wallMs: Date.UTC(2026, 0, 2, 3, 4, 5, 6),
      tq: "corrected",
      errMs: 11.2,
    });
    expect(env).toEqual({
      seq: 42,
      device: "pi-7",
      stream: "env",
      ts: "2026-01-02T03:04:05.006Z",
      tq: "corrected",
      te_ms: 12,
      values: { temperature_c: 21.5, door: true },
    });
    expect(JSON.parse(encodeEnvelope(env))).toEqual(env);
  });

  it("adds anomaly only when true and time_note only when the stamp has a note", () => {
    const plain = buildEnvelope({ ...row, anomaly: false }, "d", { wallMs: 0, tq: "ntp", errMs: 5 });
    expect("anomaly" in plain).toBe(false);
    expect("time_note" in plain).toBe(false);
    const flagged = buildEnvelope({ ...row, anomaly: true }, "d", {
      wallMs: 0,
      tq: "unsynced",
      errMs: 1e9,
      note: "earlier boot, never anchored",
    });
    expect(flagged.anomaly).toBe(true);
    expect(flagged.time_note).toBe("earlier boot, never anchored");
  });

  it("carries boot and mono_ms only while the time can still improve (unsynced, rtc)", () => {
    const r = { ...row, bootId: "b00t", monoNs: 1_234_567_891n };
    for (const tq of ["unsynced", "rtc"] as const)
      expect(buildEnvelope(r, "d", { wallMs: 0, tq, errMs: 900.2 })).toMatchObject({
        te_ms: 901,
        boot: "b00t",
        mono_ms: 1234.567,
      });
    for (const tq of ["ntp", "corrected"] as const) {
      const env = buildEnvelope(r, "d", { wallMs: 0, tq, errMs: 3 });
      expect("boot" in env || "mono_ms" in env).toBe(false);
    }
  });

  it("puts readings under <prefix>/<device>/<stream> and status under <prefix>/<device>/status", () => {
    expect(streamTopic("site/a", "pi-7", "env")).toBe("site/a/pi-7/env");
    expect(statusTopic("fieldrelay", "pi-7")).toBe("fieldrelay/pi-7/status");
  });
});

describe("Topic filter matching", () => {
  const cases: Array<[string, string, boolean]> = [
    ["a/b/c", "a/b/c", true],
    ["a/b/c", "a/b", false],
    ["a/+/c", "a/x/c", true],
    ["a/+/c", "a/x/y/c", false],
    ["a/#", "a", true],
    ["a/#", "a/b/c", true],
    ["#", "a/b", true],
    ["+", "a", true],
    ["+/+", "a/b", true],
    ["a/+", "a/", true],
    ["fieldrelay/pi/cmd/#", "fieldrelay/pi/cmd/reboot", true],
    ["fieldrelay/pi/cmd/+", "fieldrelay/other/cmd/reboot", false],
    ["#", "$SYS/broker", false],
    ["+/broker", "$SYS/broker", false],
    ["$SYS/#", "$SYS/broker", true],
    ["$share/g/a/+", "a/b", true],
  ];
  it.each(cases)("%s against %s is %s", (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });
});

describe("TLS file loading", () => {
  it("names the file it cannot read in a typed error", () => {
    const dir = mkdtempSync(join(tmpdir(), "fr-tls-"));
    try {
      const missingCa = join(dir, "nope-ca.pem");
      let caught: unknown;
      try {
        loadTls({ ca: missingCa, insecure: false, alpn: [] });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(PublishTlsFileError);
      expect((caught as PublishTlsFileError).file).toBe(missingCa);
      expect((caught as PublishTlsFileError).message).toContain(missingCa);
      expect((caught as PublishTlsFileError).message).toContain("ENOENT");
      expect((caught as PublishTlsFileError).hint).toContain("mqtt.tls.ca");

      const key = join(dir, "key.pem");
      writeFileSync(key, "secret");
      chmodSync(key, 0o000);
      const cert = join(dir, "cert.pem");
      writeFileSync(cert, "cert");
      if (process.getuid?.() !== 0) {
        expect(() => loadTls({ cert, key, insecure: false, alpn: [] })).toThrow(
          /mqtt\.tls\.key file .*key\.pem/,
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("keeps verification on unless insecure, and passes ALPN and SNI through", () => {
    expect(loadTls({ insecure: false, alpn: [] })).toEqual({ rejectUnauthorized: true });
    expect(loadTls({ insecure: true, alpn: ["mqtt"], servername: "broker.example" })).toEqual({
      rejectUnauthorized: false,
      ALPNProtocols: ["mqtt"],
      servername: "broker.example",
    });
  });
});

describe("MemoryQueue (the Queue contract the publisher relies on)", () => {
  it("returns priority DESC then seq ASC, skipping excluded seqs", () => {
    const q = new MemoryQueue();
    for (const p of [5, 9, 5, 1, 9]) q.capture(reading({ priority: p }));
    expect(q.next(10, new Set()).map((r) => r.seq)).toEqual([2, 5, 1, 3, 4]);
    expect(q.next(2, new Set([2]))).toHaveLength(2);
    expect(q.next(10, new Set([2, 1])).map((r) => r.seq)).toEqual([5, 3, 4]);
  });

  it("returns previously inflight rows first, and deletes rows on ack", () => {
    const q = new MemoryQueue();
    for (const p of [5, 9, 5, 1]) q.capture(reading({ priority: p }));
    q.markInflight([3, 4]);
    expect(q.next(10, new Set()).map((r) => r.seq)).toEqual([3, 4, 2, 1]);
    expect(q.next(10, new Set([3, 4])).map((r) => r.seq)).toEqual([2, 1]);
    expect(q.stats().inflight).toBe(2);
    q.ack([3, 2, 99]);
    expect(q.seqs()).toEqual([1, 4]);
    expect(q.stats().delivered).toBe(2);
    expect(q.ackLog).toEqual([3, 2]);
  });

  it("tells listeners when readings become available, until they unsubscribe", () => {
    const q = new MemoryQueue();
    let calls = 0;
    const off = q.onAvailable(() => calls++);
    q.capture(reading());
    off();
    q.capture(reading());
    expect(calls).toBe(1);
  });
});
