import { deflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { buildEnvelope, encodeEnvelope } from "../../src/publish/index.ts";
import type { QueuedReading } from "../../src/queue/types.ts";
import { profileNames } from "../../src/sensors/simulated/profiles.ts";
import {
  BATCH_CONTENT_TYPE,
  type DecodedReading,
  decodeReadings,
  encodeBatch,
  encodeBatchJson,
  WireFormatError,
} from "../../src/wire/index.ts";
import { profileReadings } from "../support/wire-readings.ts";

const z = (doc: unknown) => new Uint8Array(deflateSync(JSON.stringify(doc)));

function malformed(payload: Uint8Array, what: RegExp, contentType?: string): void {
  let caught: unknown;
  try {
    decodeReadings(payload, contentType);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(WireFormatError);
  expect((caught as WireFormatError).what).toMatch(what);
}

describe("batch format round trip", () => {
  it("decodes every reading of every simulated profile exactly as encoded, ntp and unsynced", () => {
    for (const profile of profileNames)
      for (const time of ["ntp", "unsynced"] as const) {
        const readings = profileReadings(profile, 300, { time });
        expect(decodeReadings(encodeBatch(readings))).toEqual(readings);
      }
  });

  it("keeps per-reading fields that differ, fields only some readings have, and unknown fields", () => {
    const [a, b, c, d] = profileReadings("sensor", 4, { time: "unsynced" }) as [
      DecodedReading,
      DecodedReading,
      DecodedReading,
      DecodedReading,
    ];
    b.tq = "corrected";
    delete b.boot;
    delete b.mono_ms;
    c.time_note = "earlier boot, never anchored";
    c.values = { state: "open", door: true, count: -3 };
    c.anomaly = true;
    d.future_field = { x: [1, 2] };
    d.mono_ms = 0.1 + 0.2; // not 3 decimals: travels verbatim, still exact
    const readings = [a, b, c, d];
    const json = encodeBatchJson(readings);
    expect(json.base).toEqual({ device: "pi-7", stream: "sensor", te_ms: 1000 });
    expect(decodeReadings(encodeBatch(readings))).toEqual(readings);
  });

  it("factors out fields every reading shares (SenML-style base) and writes offsets from the previous reading", () => {
    const readings = profileReadings("controller", 3, { time: "unsynced" });
    const json = encodeBatchJson(readings) as { base: object; readings: Array<Record<string, unknown>> };
    expect(json.base).toEqual({
      device: "pi-7",
      stream: "controller",
      tq: "unsynced",
      te_ms: 1000,
      boot: expect.any(String),
    });
    expect(json.readings.map((r) => r.ds)).toEqual([0, 1, 1]);
    expect(json.readings[0]).not.toHaveProperty("seq");
    expect(json.readings[0]).not.toHaveProperty("ts");
  });

  it("writes readings in seq order whatever order they come in (resends come first from the queue)", () => {
    const readings = profileReadings("gateway", 5);
    const shuffled = [readings[3]!, readings[0]!, readings[4]!, readings[1]!, readings[2]!];
    expect(decodeReadings(encodeBatch(shuffled))).toEqual(readings);
  });

  it("carries a seq gap (a crash can skip seqs) and a clock step backwards", () => {
    const readings = profileReadings("camera", 3);
    readings[1]!.seq += 1000;
    readings[2]!.seq += 5000;
    readings[2]!.ts = "2020-01-01T00:00:00.000Z";
    expect(decodeReadings(encodeBatch(readings))).toEqual(readings);
  });

  it("decodes the single-reading envelope the publisher sends, by sniffing and by content type", () => {
    const queued: QueuedReading = {
      seq: 42,
      bootId: "b",
      monoNs: 1n,
      wallMs: Date.UTC(2026, 0, 2, 3, 4, 5, 678),
      tq: "ntp",
      stream: "env",
      priority: 5,
      qos: 1,
      values: { temperature_c: 21.5 },
    };
    const envelope = buildEnvelope(queued, "pi-7", { wallMs: queued.wallMs, tq: "ntp", errMs: 0 });
    const payload = new TextEncoder().encode(encodeEnvelope(envelope));
    expect(decodeReadings(payload)).toEqual([envelope]);
    expect(decodeReadings(payload, "application/json")).toEqual([envelope]);
    const batch = encodeBatch([{ ...envelope }, { ...envelope, seq: 43 }]);
    expect(decodeReadings(batch, BATCH_CONTENT_TYPE)).toHaveLength(2);
  });

  it("is at most 25 bytes per reading for batches of 500 of every simulated profile (payload only)", () => {
    for (const profile of profileNames)
      for (const time of ["ntp", "unsynced"] as const) {
        const n = 500;
        expect(encodeBatch(profileReadings(profile, n, { time })).length / n).toBeLessThan(25);
      }
  });

  it("refuses readings of two streams in one batch, and a non-canonical ts", () => {
    const [a, b] = profileReadings("sensor", 2);
    expect(() => encodeBatch([a!, { ...b!, stream: "other" }])).toThrow(WireFormatError);
    expect(() => encodeBatch([{ ...a!, ts: "2026-01-02T03:04:05Z" }])).toThrow(WireFormatError);
  });
});

describe("decodeReadings on malformed input", () => {
  const good = encodeBatchJson(profileReadings("sensor", 3)) as Record<string, unknown> & {
    readings: Array<Record<string, unknown>>;
  };
  const withRecord = (i: number, patch: Record<string, unknown>) => ({
    ...good,
    readings: good.readings.map((r, j) => (j === i ? { ...r, ...patch } : r)),
  });

  it("names what is wrong, with a typed WireFormatError", () => {
    malformed(new Uint8Array(), /payload/);
    malformed(new TextEncoder().encode("hello"), /payload/);
    malformed(new TextEncoder().encode("{not json"), /envelope JSON/);
    malformed(new TextEncoder().encode('{"seq":1}'), /envelope\.device/);
    malformed(
      new TextEncoder().encode('{"seq":1,"device":"d","stream":"s","ts":"yesterday","tq":"ntp","values":{}}'),
      /envelope\.ts/,
    );
    malformed(new Uint8Array(deflateSync("not json")), /batch JSON/);
    malformed(encodeBatch(profileReadings("sensor", 3)).slice(0, 20), /zlib stream/);
    malformed(new TextEncoder().encode("{}"), /zlib stream/, BATCH_CONTENT_TYPE);
    malformed(z({ ...good, v: 2 }), /batch\.v/);
    malformed(z({ ...good, bseq: "1" }), /batch\.bseq/);
    malformed(z({ ...good, base: { ...(good.base as object), seq: 1 } }), /batch\.base\.seq/);
    malformed(z({ ...good, readings: [] }), /batch\.readings/);
    malformed(z(withRecord(1, { ds: undefined })), /readings\[1\]\.ds/);
    malformed(z(withRecord(2, { ts: "2026-01-02T03:04:05.678Z" })), /readings\[2\]\.ts/);
    malformed(z(withRecord(0, { values: { a: null } })), /readings\[0\]\.values\.a/);
    malformed(z(withRecord(0, { tq: "gps" })), /readings\[0\]\.tq/);
    malformed(z(withRecord(0, { dt: 9e15 })), /readings\[0\]\.(dt|ts)/);
  });

  it("refuses a batch that would inflate beyond 64 MiB instead of allocating it", () => {
    malformed(new Uint8Array(deflateSync(Buffer.alloc(65 * 1024 * 1024, 0x20))), /zlib stream/);
  });
});

describe("encodeBatch with the times given (the publisher's fast path)", () => {
  it("encodes exactly what parsing ts would, whatever the order of the readings", () => {
    const readings = profileReadings("sensor", 50, { time: "unsynced" });
    const shuffled = [...readings].reverse();
    const timesMs = shuffled.map((r) => Date.parse(r.ts));
    expect(decodeReadings(encodeBatch(shuffled, { timesMs }))).toEqual(readings);
    expect(() => encodeBatch(shuffled, { timesMs: timesMs.slice(1) })).toThrow(WireFormatError);
  });
});
