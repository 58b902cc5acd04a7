/**
 * `fieldrelay sink` against a real mosquitto and a real PostgreSQL (private cluster per file):
 * exactly once, PUBACK only after COMMIT, clock corrections in either order, bad input, a
 * database outage, and the schema's versioning.
 */
import { SQL } from "bun";
import { connectAsync, type MqttClient } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/log/index.ts";
import {
  migrate,
  SchemaError,
  type Sink,
  type SinkConfigInput,
  startSink,
  validateSinkConfig,
} from "../../src/sink/index.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { MqttWireProxy } from "../support/mqtt-proxy.ts";
import { freePort } from "../support/ports.ts";
import { POSTGRES, PostgresCluster } from "../support/postgres.ts";
import { MOSQUITTO, missing } from "../support/tools.ts";

const skip = missing(MOSQUITTO, POSTGRES);
const BOOT_A = "0f3e2a6c-1b2d-4e5f-8a9b-0c1d2e3f4a5b";
const BOOT_B = "7c9d1e2f-3a4b-4c5d-9e6f-7a8b9c0d1e2f";

async function until(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

interface EnvelopeExtra {
  tq?: string;
  ts?: string;
  te_ms?: number;
  boot?: string;
  mono_ms?: number;
  values?: Record<string, unknown>;
  stream?: string;
}

function envelope(device: string, seq: number, extra: EnvelopeExtra = {}): string {
  return JSON.stringify({
    seq,
    device,
    stream: extra.stream ?? "env",
    ts: extra.ts ?? new Date(Date.UTC(2026, 10, 30, 1, 0, 0) + seq * 1000).toISOString(),
    tq: extra.tq ?? "ntp",
    te_ms: extra.te_ms ?? 20,
    values: extra.values ?? { temperature_c: 20 + seq / 10 },
    ...(extra.boot ? { boot: extra.boot, mono_ms: extra.mono_ms } : {}),
  });
}

describe.skipIf(skip)("fieldrelay sink (mosquitto + PostgreSQL)", () => {
  let broker: MosquittoBroker;
  let pg: PostgresCluster;
  let publisher: MqttClient;
  let db: SQL;
  let logLines: Array<Record<string, unknown>>;
  const sinks: Sink[] = [];
  let table = "";
  let n = 0;

  beforeAll(async () => {
    broker = await MosquittoBroker.start({ persistent: true, extra: ["max_queued_messages 0"] });
    pg = await PostgresCluster.start({ extra: ["track_commit_timestamp = on"] });
    publisher = await connectAsync(broker.url, {
      protocolVersion: 5,
      clientId: "test-pub",
      reconnectPeriod: 200,
    });
    db = new SQL({ url: pg.url(), password: pg.password, max: 2 });
  }, 60_000);

  afterAll(async () => {
    for (const s of sinks) await s.stop(1000).catch(() => {});
    await publisher?.endAsync(true);
    await db?.close();
    await pg?.close();
    await broker?.close();
  });

  afterEach(async () => {
    while (sinks.length) await sinks.pop()!.stop(2000);
  });

  async function sink(overrides: SinkConfigInput = {}, name = `t${n}`): Promise<Sink> {
    logLines = [];
    const config = validateSinkConfig(
      {
        mqtt: { url: broker.url, client_id: `sink-${name}`, topic_prefix: `p${n}`, ...overrides.mqtt },
        postgres: { url: pg.url(), table, ...overrides.postgres },
        sink: { commit_interval_ms: 20, retry_s: 0.2, ...overrides.sink },
        health: { listen: `127.0.0.1:${await freePort()}`, ...overrides.health },
      } as Record<string, unknown>,
      "test",
    );
    config.postgres.password = pg.password;
    const log = createLogger({
      level: "debug",
      destination: { write: (s: string) => logLines.push(JSON.parse(s)) },
    });
    const s = await startSink({ config, log, version: "test" });
    if (!s) throw new Error("sink did not start");
    sinks.push(s);
    await until(() => s.status().consumer.connected, "sink connected");
    await Bun.sleep(100); // SUBACK
    return s;
  }

  const fresh = () => {
    n += 1;
    table = `readings_${n}`;
    return `p${n}`;
  };
  const publish = (topic: string, payload: string | Buffer, retain = false) =>
    publisher.publishAsync(topic, payload, { qos: 1, retain });
  const count = async (where = "true") =>
    Number((await db.unsafe(`SELECT count(*) AS n FROM ${table} WHERE ${where}`))[0].n);

  it("stores every reading once: resends and duplicates are dropped and counted", async () => {
    const prefix = fresh();
    const s = await sink();
    for (let seq = 1; seq <= 50; seq++) await publish(`${prefix}/pi-1/env`, envelope("pi-1", seq));
    // The edge resends after a reconnect: the same (device, seq) again, some in one batch.
    for (let seq = 40; seq <= 60; seq++) await publish(`${prefix}/pi-1/env`, envelope("pi-1", seq));
    await until(async () => (await count()) === 60 && s.status().writer.pending === 0, "60 rows");
    const st = s.status();
    expect(st.writer.inserted).toBe(60);
    expect(st.writer.duplicates).toBe(11);
    expect(st.consumer.acked).toBe(71);
    const rows = await db.unsafe(
      `SELECT device, seq, stream, tq, te_ms, "values" FROM ${table} WHERE seq = 7`,
    );
    expect(rows[0]).toMatchObject({ device: "pi-1", seq: "7", stream: "env", tq: "ntp", te_ms: "20" });
    expect(JSON.parse(rows[0].values)).toEqual({ temperature_c: 20.7 });
    // Many messages per transaction (group commit).
    expect(st.writer.commits).toBeLessThan(71);
  });

  it("sends no PUBACK before the transaction holding the message has committed (seen on the wire)", async () => {
    const prefix = fresh();
    const proxy = await MqttWireProxy.start(broker.port);
    try {
      const s = await sink({ mqtt: { url: proxy.url } });
      // A lock makes the INSERT wait: the transaction cannot commit while the test holds it.
      const blocker = await db.reserve();
      await blocker`BEGIN`;
      await blocker.unsafe(`LOCK TABLE ${table} IN EXCLUSIVE MODE`);
      await publish(`${prefix}/pi-2/env`, envelope("pi-2", 1));
      await until(() => s.status().consumer.received === 1, "message received");
      await Bun.sleep(500);
      expect(proxy.pubacks()).toEqual([]);
      expect(await count()).toBe(0);
      await blocker`COMMIT`;
      blocker.release();
      await until(() => proxy.pubacks().length === 1, "PUBACK after COMMIT");
      const [row] = await db.unsafe(
        `SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000 AS committed_ms FROM ${table} WHERE device = 'pi-2'`,
      );
      expect(proxy.pubacks()[0]!.at).toBeGreaterThanOrEqual(Math.floor(Number(row.committed_ms)));
    } finally {
      await proxy.close();
    }
  });

  it("a commit whose PUBACK was lost with the connection is redelivered and dropped as a duplicate", async () => {
    const prefix = fresh();
    const proxy = await MqttWireProxy.start(broker.port);
    const first = await sink({ mqtt: { url: proxy.url } }, "lost-ack");
    const blocker = await db.reserve();
    await blocker`BEGIN`;
    await blocker.unsafe(`LOCK TABLE ${table} IN EXCLUSIVE MODE`);
    await publish(`${prefix}/pi-3/env`, envelope("pi-3", 1));
    await until(() => first.status().consumer.received === 1, "received");
    proxy.cut(true); // the network fails while the transaction waits
    await blocker`COMMIT`;
    blocker.release();
    await until(async () => (await count()) === 1, "committed");
    await until(() => first.status().consumer.staleAcksDropped === 1, "ack dropped with its connection");
    sinks.splice(sinks.indexOf(first), 1);
    await first.stop(1000);
    await proxy.close();
    // The same sink (client id) back on the broker: its session redelivers the unacknowledged message.
    const again = await sink({}, "lost-ack");
    await until(() => again.status().writer.duplicates === 1, "redelivered duplicate");
    expect(await count()).toBe(1);
    expect(again.status().consumer.acked).toBe(1);
  });
});

describe.skipIf(skip)("sink schema", () => {
  let pg: PostgresCluster;
  let db: SQL;
  beforeAll(async () => {
    pg = await PostgresCluster.start();
    db = new SQL({ url: pg.url(), password: pg.password, max: 2 });
  }, 60_000);
  afterAll(async () => {
    await db?.close();
    await pg?.close();
  });

  it("migrates once, even when two sinks start together, and refuses a newer schema", async () => {
    const [a, b] = await Promise.all([migrate(db, "m1"), migrate(db, "m1")]);
    expect([...a, ...b]).toEqual([1]);
    expect(await migrate(db, "m1")).toEqual([]);
    await db.unsafe(`INSERT INTO m1_migrations (version, description) VALUES (99, 'from the future')`);
    await expect(migrate(db, "m1")).rejects.toBeInstanceOf(SchemaError);
  });
});
