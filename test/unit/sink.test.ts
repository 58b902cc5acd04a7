import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/index.ts";
import { silentLogger } from "../../src/log/index.ts";
import {
  type BatchResult,
  classifyMessage,
  createWriter,
  isDataError,
  loadSinkConfig,
  mergeAnchors,
  type Pending,
  type SinkStatus,
  type Store,
  sinkHealth,
  validateSinkConfig,
  type Work,
} from "../../src/sink/index.ts";
import { BATCH_CONTENT_TYPE, encodeBatch } from "../../src/wire/index.ts";

const BOOT = "0f3e2a6c-1b2d-4e5f-8a9b-0c1d2e3f4a5b";
const bytes = (s: string) => new TextEncoder().encode(s);
const envelope = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    seq: 1,
    device: "pi-1",
    stream: "env",
    ts: "2026-11-30T01:00:00.000Z",
    tq: "ntp",
    te_ms: 12,
    values: { temperature_c: 21.5 },
    ...extra,
  });

describe("Sink message classification", () => {
  it("turns an envelope on a stream topic into one row keyed by device and seq", () => {
    const c = classifyMessage("fr", "fr/pi-1/env", bytes(envelope()));
    expect(c).toEqual({
      kind: "readings",
      rows: [
        {
          device: "pi-1",
          seq: 1,
          stream: "env",
          tsMs: Date.UTC(2026, 10, 30, 1),
          tq: "ntp",
          teMs: 12,
          boot: null,
          monoMs: null,
          values: '{"temperature_c":21.5}',
          anomaly: false,
          timeNote: null,
        },
      ],
    });
  });

  it("decodes a batch into one row per reading, keeping boot and mono_ms for later correction", () => {
    const readings = [1, 2, 3].map((seq) => ({
      ...JSON.parse(envelope({ seq, tq: "unsynced", boot: BOOT, mono_ms: seq * 1000.5 })),
      ts: new Date(Date.UTC(2000, 0, 1) + seq).toISOString(),
    }));
    const c = classifyMessage("fr", "fr/pi-1/env", encodeBatch(readings), BATCH_CONTENT_TYPE);
    expect(c.kind).toBe("readings");
    if (c.kind !== "readings") return;
    expect(c.rows.map((r) => [r.seq, r.boot, r.monoMs])).toEqual([
      [1, BOOT, 1000.5],
      [2, BOOT, 2001],
      [3, BOOT, 3001.5],
    ]);
  });

  it("recognises clock messages, ignores status and command topics", () => {
    const clock = JSON.stringify({
      v: 1,
      device: "pi-1",
      boot: BOOT,
      anchors: [{ mono_ms: 1, wall_ms: 2, src: "ntp", err_ms: 3, ppm: 4 }],
    });
    expect(classifyMessage("fr", `fr/pi-1/clock/${BOOT}`, bytes(clock)).kind).toBe("clock");
    expect(classifyMessage("fr", "fr/pi-1/status", bytes("online"))).toEqual({
      kind: "ignored",
      why: "status",
    });
    expect(classifyMessage("fr", "fr/pi-1/cmd/reboot", bytes("{}"))).toEqual({ kind: "ignored", why: "cmd" });
  });

  it.each([
    ["fr/pi-1/env", "{nope", "malformed-reading"],
    ["fr/pi-1/env", '{"Time":"x","ENERGY":{}}', "malformed-reading"],
    ["fr/pi-1/env", envelope({ device: "pi-2" }), "device-mismatch"],
    ["fr/pi-1/clock", envelope({ stream: "clock" }), "reserved-stream"],
    [`fr/pi-1/clock/${BOOT}`, "{}", "malformed-clock"],
    [
      "fr/pi-1/clock/not-a-boot",
      JSON.stringify({ v: 1, device: "pi-1", boot: "not-a-boot", anchors: [] }),
      "malformed-clock",
    ],
    [
      `fr/pi-1/clock/${BOOT}`,
      JSON.stringify({ v: 1, device: "pi-2", boot: BOOT, anchors: [] }),
      "device-mismatch",
    ],
    ["other/pi-1/env", envelope(), "foreign-topic"],
    ["fr/pi-1/a/b/c", envelope(), "foreign-topic"],
  ])("refuses %s %s as %s", (topic, payload, kind) => {
    const c = classifyMessage("fr", topic, bytes(payload));
    expect(c.kind).toBe("dead");
    if (c.kind === "dead") expect(c.dead).toBe(kind);
  });
});

describe("Clock anchors merge", () => {
  const a = { mono_ms: 1000, wall_ms: 5000, src: "ntp" as const, err_ms: 10, ppm: 50 };
  const b = { mono_ms: 2000, wall_ms: 6000, src: "rtc" as const, err_ms: 5, ppm: 2, rate_ppm: 30 };
  it("is a set union, in monotonic order, keeping rate_ppm; merging again adds nothing", () => {
    const m = mergeAnchors([b], [a, b]);
    expect(m).toEqual([a, b]);
    expect(mergeAnchors(m, [a])).toEqual(m);
    expect(mergeAnchors([a], [b])).toEqual(mergeAnchors([b], [a]));
  });
});

/** A store whose commits the test resolves or fails by hand. */
class ManualStore implements Store {
  calls: Array<{ works: Work[]; resolve: (r: BatchResult) => void; reject: (e: unknown) => void }> = [];
  writeBatch(works: Work[]): Promise<BatchResult> {
    return new Promise((resolve, reject) => this.calls.push({ works, resolve, reject }));
  }
}
const ok = (inserted: number): BatchResult => ({ inserted, duplicates: 0, corrected: 0, deadLetters: 0 });
const tick = () => new Promise((r) => setTimeout(r, 0));
const readings = (n: number): Work => ({
  kind: "readings",
  rows: Array.from({ length: n }, (_, i) => ({
    device: "d",
    seq: i,
    stream: "s",
    tsMs: 0,
    tq: "ntp" as const,
    teMs: 1,
    boot: null,
    monoMs: null,
    values: "{}",
    anomaly: false,
    timeNote: null,
  })),
});

describe("Sink writer (group commit)", () => {
  const pending = (work: Work, acks: number[], id: number): Pending => ({
    work,
    ack: () => acks.push(id),
    receivedMs: 0,
    topic: "t",
    payload: new Uint8Array(),
  });

  it("acknowledges a batch only after its transaction resolved, many messages per transaction", async () => {
    const store = new ManualStore();
    const acks: number[] = [];
    const w = createWriter({
      store,
      batchSize: 10,
      commitIntervalMs: 1000,
      retryMs: 10,
      log: silentLogger(),
      nowMs: () => 0,
    });
    for (let i = 0; i < 5; i++) w.add(pending(readings(2), acks, i));
    await tick();
    expect(store.calls).toHaveLength(1); // batch_size reached: flushed at once, not after 1000 ms
    expect(store.calls[0]!.works).toHaveLength(5);
    expect(acks).toEqual([]);
    store.calls[0]!.resolve(ok(10));
    await tick();
    expect(acks).toEqual([0, 1, 2, 3, 4]);
    w.stop();
  });

  it("acknowledges nothing while the database is down and retries the same batch first", async () => {
    const store = new ManualStore();
    const acks: number[] = [];
    const w = createWriter({
      store,
      batchSize: 2,
      commitIntervalMs: 1,
      retryMs: 5,
      log: silentLogger(),
      nowMs: () => 0,
    });
    w.add(pending(readings(1), acks, 1));
    w.add(pending(readings(1), acks, 2));
    await tick();
    store.calls[0]!.reject(
      Object.assign(new Error("connection refused"), { code: "ERR_POSTGRES_CONNECTION_CLOSED" }),
    );
    await tick();
    expect(w.stats().databaseUp).toBe(false);
    w.add(pending(readings(1), acks, 3));
    await new Promise((r) => setTimeout(r, 20));
    expect(acks).toEqual([]);
    expect(store.calls[1]!.works).toEqual(store.calls[0]!.works);
    store.calls[1]!.resolve(ok(2));
    await new Promise((r) => setTimeout(r, 20));
    store.calls[2]!.resolve(ok(1));
    await tick();
    expect(acks).toEqual([1, 2, 3]);
    expect(w.stats().databaseUp).toBe(true);
    w.stop();
  });

  it("writes each message alone when the database refuses the data, and dead-letters the one it still refuses", async () => {
    const store = new ManualStore();
    const acks: number[] = [];
    const w = createWriter({
      store,
      batchSize: 3,
      commitIntervalMs: 1,
      retryMs: 5,
      log: silentLogger(),
      nowMs: () => 0,
    });
    for (let i = 0; i < 3; i++) w.add(pending(readings(1), acks, i));
    await tick();
    const refused = Object.assign(new Error("numeric out of range"), { errno: "22003" });
    store.calls[0]!.reject(refused);
    await tick();
    store.calls[1]!.resolve(ok(1));
    await tick();
    store.calls[2]!.reject(refused);
    await tick();
    expect(store.calls[3]!.works[0]).toMatchObject({ kind: "dead", dead: "refused-by-database" });
    store.calls[3]!.resolve({ ...ok(0), deadLetters: 1 });
    await tick();
    store.calls[4]!.resolve(ok(1));
    await tick();
    expect(acks).toEqual([0, 1, 2]);
    expect(w.stats().refusedByDatabase).toBe(1);
    w.stop();
  });

  it("tells data errors from outages by SQLSTATE", () => {
    expect(isDataError({ errno: "22P05" })).toBe(true);
    expect(isDataError({ errno: "23502" })).toBe(true);
    expect(isDataError({ errno: "57P01" })).toBe(false);
    expect(isDataError({ code: "ERR_POSTGRES_CONNECTION_CLOSED" })).toBe(false);
    expect(isDataError(new Error("x"))).toBe(false);
  });
});

describe("Sink health", () => {
  const status = (over: Partial<SinkStatus["writer"]> = {}, connected = true): SinkStatus => ({
    consumer: {
      connected,
      received: 0,
      deadByKind: {},
      ignored: {},
      acked: 0,
      staleAcksDropped: 0,
      reconnects: 0,
    },
    writer: {
      messages: 0,
      inserted: 0,
      duplicates: 0,
      corrected: 0,
      deadLetters: 0,
      commits: 0,
      commitFailures: 0,
      refusedByDatabase: 0,
      pending: 0,
      databaseUp: true,
      oldestPendingMs: undefined,
      lastCommitMs: undefined,
      ...over,
    },
    startedMs: 0,
    nowMs: 100_000,
    readingsPerSecond: 0,
  });
  it("is unhealthy when the database or the broker is unreachable, degraded when lagging", () => {
    expect(sinkHealth(status(), "v").status).toBe("healthy");
    expect(sinkHealth(status({ databaseUp: false }), "v").status).toBe("unhealthy");
    expect(sinkHealth(status({}, false), "v").status).toBe("unhealthy");
    const lagging = sinkHealth(status({ pending: 5, oldestPendingMs: 10_000 }), "v");
    expect(lagging.status).toBe("degraded");
    expect(lagging.oldest_pending_age_s).toBe(90);
  });
});

describe("Sink config", () => {
  const dir = mkdtempSync(join(tmpdir(), "fr-sink-config-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (text: string) => {
    const p = join(dir, `${Math.random()}.toml`);
    writeFileSync(p, text);
    return p;
  };

  it("has a default for every key and takes passwords from the environment", () => {
    const c = loadSinkConfig({
      path: file('[postgres]\nurl = "postgres://fleet@db:5432/fleet"\n'),
      env: { FIELDRELAY_SINK_POSTGRES_PASSWORD: "s3cret", FIELDRELAY_SINK_SINK_BATCH_SIZE: "500" },
    });
    expect(c.postgres).toMatchObject({
      url: "postgres://fleet@db:5432/fleet",
      password: "s3cret",
      table: "readings",
    });
    expect(c.sink.batch_size).toBe(500);
    expect(c.mqtt.share_group).toBe("fieldrelay-sink");
  });

  it("deploy/sink.example.toml is valid and shows every default", () => {
    const example = loadSinkConfig({
      path: join(import.meta.dirname, "../../deploy/sink.example.toml"),
      env: {},
    });
    expect(example).toEqual(validateSinkConfig({}, "defaults"));
  });

  it("refuses passwords in the file or the URL, and names every bad key", () => {
    let error: unknown;
    try {
      loadSinkConfig({
        path: file(
          '[mqtt]\npassword = "x"\n[postgres]\nurl = "postgres://u:pw@db/x"\ntable = "Bad-Name"\n[sink]\nbatch_sise = 1\n',
        ),
        env: {},
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const paths = (error as ConfigError).problems.map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining(["mqtt.password", "postgres.url", "postgres.table", "sink.batch_sise"]),
    );
    expect((error as ConfigError).message).toMatch(/FIELDRELAY_SINK_MQTT_PASSWORD/);
  });
});
