import { describe, expect, it } from "vitest";
import type { PublishStamp } from "../../src/clock/types.ts";
import { encodeStampedBatch, envelopeLength, type StampedReading } from "../../src/publish/batch-encode.ts";
import { buildEnvelope, encodeEnvelope } from "../../src/publish/index.ts";
import type { QueuedReading } from "../../src/queue/types.ts";
import { seededRandom } from "../../src/sensors/simulated/model.ts";
import { compressBatch, decodeReadings, encodeBatchJson } from "../../src/wire/index.ts";
import { profileBacklog } from "../bench/batch.ts";

const DEVICE = "pi-7";

/** Readings of one stream with stamps that vary the way the clock model's can (seeded). */
function stamped(n: number, seed: number, stream = "env"): StampedReading[] {
  const random = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const mode = pick(["ntp", "unsynced", "mixed", "notes", "odd-mono", "anomalies"] as const);
  return profileBacklog(n)
    .slice(0, n)
    .map((r, i) => {
      const reading: QueuedReading = { ...r, stream, seq: 1000 + i * (1 + Math.floor(random() * 3)) };
      if (mode === "odd-mono") reading.monoNs = BigInt(Math.floor(random() * 1e15)) + 1n; // ns: mono_ms has 6 decimals
      if (mode === "anomalies" && random() < 0.3) reading.anomaly = true;
      if (mode === "anomalies" && i === 0) reading.anomaly = true;
      const tq: PublishStamp["tq"] =
        mode === "ntp"
          ? "ntp"
          : mode === "mixed"
            ? pick(["ntp", "rtc", "unsynced", "corrected"] as const)
            : mode === "notes"
              ? pick(["unsynced", "corrected"] as const)
              : "unsynced";
      const stamp: PublishStamp = {
        wallMs: r.wallMs + Math.floor(random() * 5),
        tq,
        errMs: mode === "mixed" ? random() * 40 : 12,
      };
      if (mode === "notes" && random() < 0.7)
        stamp.note = random() < 0.5 ? "earlier boot, never anchored" : "";
      if (mode === "mixed" && random() < 0.2) reading.bootId = "other-boot";
      return { reading, stamp, valuesJson: JSON.stringify(reading.values) };
    });
}

const generic = (items: readonly StampedReading[]) =>
  JSON.stringify(
    encodeBatchJson(
      items.map((i) => buildEnvelope(i.reading, DEVICE, i.stamp)),
      { timesMs: items.map((i) => i.stamp.wallMs) },
    ),
  );

describe("the publisher's batch encoder (batch-encode.ts)", () => {
  it("writes exactly what JSON.stringify(encodeBatchJson(envelopes)) writes, over 300 seeded batches", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const items = stamped(1 + (seed % 40), seed);
      expect(encodeStampedBatch(DEVICE, items), `seed ${seed}`).toBe(generic(items));
    }
  });

  it("writes readings handed over out of order in seq order, as the generic encoder does", () => {
    const items = stamped(30, 7).reverse();
    expect(encodeStampedBatch(DEVICE, items)).toBe(generic(items));
    const decoded = decodeReadings(compressBatch(encodeStampedBatch(DEVICE, items)));
    expect(decoded.map((r) => r.seq)).toEqual(items.map((i) => i.reading.seq).sort((a, b) => a - b));
  });

  it("computes the single envelope's JSON length (what max_bytes budgets) without writing it", () => {
    for (let seed = 1; seed <= 100; seed++)
      for (const item of stamped(10, seed)) {
        const json = encodeEnvelope(buildEnvelope(item.reading, DEVICE, item.stamp));
        expect(envelopeLength(JSON.stringify(DEVICE), item, JSON.stringify(item.reading.stream))).toBe(
          json.length,
        );
      }
  });

  it("refuses readings of two streams in one batch", () => {
    const items = stamped(4, 3);
    items[2] = { ...items[2]!, reading: { ...items[2]!.reading, stream: "other" } };
    expect(() => encodeStampedBatch(DEVICE, items)).toThrow(/mixed/);
  });
});
