import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/index.ts";
import {
  Batcher,
  type BatchItem,
  type BatchLimits,
  createTokenBucket,
  holdCap,
  msUntilToken,
  spendTokens,
  splitHalves,
} from "../../src/publish/index.ts";

const limits: BatchLimits = { maxReadings: 4, maxBytes: 1000, maxDelayMs: 2000, alonePriority: 9 };
let nextSeq = 1;
const item = (over: Partial<BatchItem> = {}): BatchItem => ({
  seq: nextSeq++,
  stream: "env",
  qos: 1,
  priority: 5,
  bytes: 100,
  ...over,
});
const seqs = (items: BatchItem[] | undefined) => items?.map((i) => i.seq);

describe("Batcher (readings → messages)", () => {
  it("closes a message at max_readings and hands it out at once", () => {
    const b = new Batcher(limits);
    const items = Array.from({ length: 5 }, () => item());
    for (const i of items) b.add(i, 0);
    expect(b.readyCount).toBe(1);
    expect(seqs(b.take(0))).toEqual(seqs(items.slice(0, 4)));
    expect(b.take(0)).toBeUndefined(); // the fifth waits for company or for its delay
    expect(b.held).toBe(1);
  });

  it("holds a partial message until its oldest reading has waited max_delay_ms, never longer", () => {
    const b = new Batcher(limits);
    b.add(item(), 1000);
    b.add(item(), 2500);
    expect(b.msUntilDue(2500)).toBe(500);
    expect(b.take(2999)).toBeUndefined();
    expect(b.take(3000)).toHaveLength(2);
    expect(b.msUntilDue(3000)).toBeUndefined();
  });

  it("closes a message before max_bytes would be exceeded; a reading bigger than max_bytes goes alone", () => {
    const b = new Batcher(limits);
    b.add(item({ bytes: 600 }), 0);
    b.add(item({ bytes: 600 }), 0); // would make 1200: the first closes alone
    b.add(item({ bytes: 5000 }), 0); // the 600 closes; the big one is full on its own
    expect(b.take(0)?.map((i) => i.bytes)).toEqual([600]);
    expect(b.take(0)?.map((i) => i.bytes)).toEqual([600]);
    expect(b.take(0)?.map((i) => i.bytes)).toEqual([5000]);
    expect(b.held).toBe(0);
  });

  it("keeps streams and QoS levels apart: a message is one stream at one QoS", () => {
    const b = new Batcher(limits);
    for (let k = 0; k < 4; k++) {
      b.add(item({ stream: "a" }), 0);
      b.add(item({ stream: "b" }), 0);
      b.add(item({ stream: "a", qos: 0 }), 0);
    }
    const messages = [b.take(0)!, b.take(0)!, b.take(0)!];
    for (const m of messages) {
      expect(new Set(m.map((i) => `${i.stream}/${i.qos}`)).size).toBe(1);
      expect(m).toHaveLength(4);
    }
  });

  it("sends readings at or above alone_priority alone and at once", () => {
    const b = new Batcher(limits);
    b.add(item(), 0);
    const urgent = item({ priority: 9 });
    b.add(urgent, 0);
    expect(b.take(0)).toEqual([urgent]);
    expect(b.take(0)).toBeUndefined();
  });

  it("closes the oldest open message when the hold cap is reached, so RAM stays bounded", () => {
    const wide: BatchLimits = { ...limits, maxReadings: 3000, maxBytes: 1e9 };
    const b = new Batcher(wide);
    const cap = holdCap(wide);
    for (let i = 0; i < cap; i++)
      b.add(item({ stream: i < 10 ? "old" : `new-${i % 5}`, bytes: 1 }), i < 10 ? 0 : 5);
    expect(b.readyCount).toBe(1);
    expect(b.take(5)?.[0]?.stream).toBe("old");
  });

  it("flushes every open message when asked (take(now, true)) and releases all it holds", () => {
    const b = new Batcher(limits);
    b.add(item({ stream: "a" }), 0);
    b.add(item({ stream: "b" }), 0);
    expect(b.take(0, true)).toHaveLength(1);
    expect(b.release()).toHaveLength(1);
    expect(b.held).toBe(0);
  });

  it("splits a refused message into two halves, seq order kept, down to single readings", () => {
    expect(splitHalves([1, 2, 3, 4, 5])).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
    expect(splitHalves([7])).toEqual([[7], []]);
  });
});

describe("byte rate (max_rate_bytes)", () => {
  it("lets a message bigger than a second's worth go, then waits until the debt is paid", () => {
    const bucket = createTokenBucket(1000, 0);
    spendTokens(bucket, 5000, 0);
    expect(msUntilToken(bucket, 0)).toBe(4001);
    expect(msUntilToken(bucket, 4001)).toBe(0);
  });
});

describe("[mqtt.batch] config", () => {
  const dir = mkdtempSync(join(tmpdir(), "fr-batch-config-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const load = (toml: string, env: Record<string, string> = {}) => {
    const path = join(dir, "config.toml");
    writeFileSync(path, `[device]\nid = "pi-1"\n${toml}`);
    return loadConfig({ path, env });
  };

  it("is off by default, with limits that keep live data at most 2 s", () => {
    expect(load("").mqtt).toMatchObject({
      max_rate_bytes: 0,
      batch: {
        enabled: false,
        max_readings: 500,
        max_bytes: 262_144,
        max_delay_ms: 2000,
        alone_priority: 11,
      },
    });
  });

  it("deploy/config.example.toml states its defaults", () => {
    const example = fileURLToPath(new URL("../../deploy/config.example.toml", import.meta.url));
    const { mqtt } = loadConfig({ path: example, env: {} });
    expect({ batch: mqtt.batch, max_rate_bytes: mqtt.max_rate_bytes }).toEqual({
      batch: load("").mqtt.batch,
      max_rate_bytes: 0,
    });
  });

  it("is set from the file or the environment (FIELDRELAY_MQTT_BATCH_*)", () => {
    const config = load("[mqtt.batch]\nmax_readings = 100\n", {
      FIELDRELAY_MQTT_BATCH_ENABLED: "true",
      FIELDRELAY_MQTT_BATCH_MAX_DELAY_MS: "60000",
      FIELDRELAY_MQTT_MAX_RATE_BYTES: "2000",
    });
    expect(config.mqtt.batch).toMatchObject({ enabled: true, max_readings: 100, max_delay_ms: 60_000 });
    expect(config.mqtt.max_rate_bytes).toBe(2000);
  });

  it("names the key of a bad value", () => {
    let caught: unknown;
    try {
      load("[mqtt.batch]\nmax_readings = 1\nalone_priority = 12\n");
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).problems.map((p) => p.path).sort()).toEqual([
      "mqtt.batch.alone_priority",
      "mqtt.batch.max_readings",
    ]);
  });
});
