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
import { BATCH_CONTENT_TYPE, encodeBatch } from "../../src/wire/index.ts";
import { run, Workspace } from "../support/fieldrelay.ts";
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
    // A batch (src/wire) with MQTT 5's content type, overlapping the singles by one.
    const batch = Array.from({ length: 21 }, (_, i) => JSON.parse(envelope("pi-1", 60 + i)));
    await publisher.publishAsync(`${prefix}/pi-1/env`, Buffer.from(encodeBatch(batch)), {
      qos: 1,
      properties: { contentType: BATCH_CONTENT_TYPE },
    });
    await until(async () => (await count()) === 80 && s.status().writer.pending === 0, "80 rows");
    const st = s.status();
    expect(st.writer.inserted).toBe(80);
    expect(st.writer.duplicates).toBe(12);
    expect(st.consumer.acked).toBe(72);
    const rows = await db.unsafe(
      `SELECT device, seq, stream, tq, te_ms, jsonb_typeof("values") AS type, "values"::text AS v FROM ${table} WHERE seq = 7`,
    );
    expect(rows[0]).toMatchObject({
      device: "pi-1",
      seq: "7",
      stream: "env",
      tq: "ntp",
      te_ms: "20",
      type: "object",
    });
    expect(rows[0].v).toBe('{"temperature_c": 20.7}');
    // Many messages per transaction (group commit).
    expect(st.writer.commits).toBeLessThan(72);
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
    // The sink's INSERT is in its transaction, waiting for the lock.
    await until(
      async () =>
        Number(
          (await db.unsafe(`SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'`))[0].n,
        ) > 0,
      "the INSERT waiting on the lock",
    );
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

  function clockMessage(device: string, boot: string, anchors: Array<{ mono_ms: number; wall_ms: number }>) {
    return JSON.stringify({
      v: 1,
      device,
      boot,
      anchors: anchors.map((a) => ({ ...a, src: "ntp", err_ms: 10, ppm: 50 })),
    });
  }
  const T = Date.UTC(2026, 10, 30, 0, 0, 0);
  const WRONG = Date.UTC(2000, 0, 1);
  const unsynced = (boot: string, seq: number) =>
    envelope("pi-4", seq, {
      tq: "unsynced",
      ts: new Date(WRONG + seq * 1000).toISOString(),
      te_ms: 3_600_000,
      boot,
      mono_ms: 10_000 + seq * 1000,
    });

  it("applies a clock correction to rows already stored and to rows that arrive after it, once", async () => {
    const prefix = fresh();
    const s = await sink();
    // Boot A: readings first, the correction later.
    for (let seq = 1; seq <= 5; seq++) await publish(`${prefix}/pi-4/env`, unsynced(BOOT_A, seq));
    await until(async () => (await count()) === 5, "boot A rows");
    await publish(
      `${prefix}/pi-4/clock/${BOOT_A}`,
      clockMessage("pi-4", BOOT_A, [{ mono_ms: 12_000, wall_ms: T }]),
      true,
    );
    // Boot B: the (retained) correction first, its readings later.
    await publish(
      `${prefix}/pi-4/clock/${BOOT_B}`,
      clockMessage("pi-4", BOOT_B, [{ mono_ms: 12_000, wall_ms: T + 3_600_000 }]),
      true,
    );
    await until(async () => (await count("tq = 'corrected'")) === 5, "boot A corrected");
    for (let seq = 11; seq <= 15; seq++) await publish(`${prefix}/pi-4/env`, unsynced(BOOT_B, seq));
    await until(
      async () => (await count("tq = 'corrected'")) === 10 && s.status().writer.pending === 0,
      "boot B corrected",
    );
    const rows = (await db.unsafe(
      `SELECT seq, extract(epoch FROM ts) * 1000 AS ts_ms, tq, te_ms FROM ${table} ORDER BY seq`,
    )) as Array<{ seq: string; ts_ms: string; tq: string; te_ms: string }>;
    for (const r of rows) {
      const seq = Number(r.seq);
      const mono = 10_000 + seq * 1000;
      const wall = seq < 10 ? T : T + 3_600_000;
      expect(Number(r.ts_ms)).toBe(wall + (mono - 12_000));
      expect(r.tq).toBe("corrected");
      expect(Number(r.te_ms)).toBe(Math.ceil(10 + (Math.abs(mono - 12_000) * 50) / 1e6));
    }
    expect(s.status().writer.corrected).toBe(5); // boot B's rows were stamped on insert

    // The same messages again, and an older one after the newer: nothing changes.
    const before = await db.unsafe(`SELECT seq, xmin::text AS x, ts FROM ${table} ORDER BY seq`);
    const receivedBefore = s.status().consumer.received;
    await publish(
      `${prefix}/pi-4/clock/${BOOT_A}`,
      clockMessage("pi-4", BOOT_A, [{ mono_ms: 12_000, wall_ms: T }]),
    );
    await publish(
      `${prefix}/pi-4/clock/${BOOT_B}`,
      clockMessage("pi-4", BOOT_B, [{ mono_ms: 12_000, wall_ms: T + 3_600_000 }]),
    );
    for (let seq = 1; seq <= 5; seq++) await publish(`${prefix}/pi-4/env`, unsynced(BOOT_A, seq));
    await until(
      () => s.status().consumer.received === receivedBefore + 7 && s.status().writer.pending === 0,
      "replay",
    );
    expect(await db.unsafe(`SELECT seq, xmin::text AS x, ts FROM ${table} ORDER BY seq`)).toEqual(before);
    expect(s.status().writer.corrected).toBe(5);
  });

  it("stores malformed and foreign messages as dead letters, counts them, logs each kind once and acknowledges them", async () => {
    const prefix = fresh();
    const s = await sink();
    await publish(`${prefix}/pi-5/env`, "{not json");
    await publish(`${prefix}/pi-5/env`, "also not json");
    await publish(`${prefix}/pi-5/env`, envelope("pi-6", 1)); // another device's reading on pi-5's topic
    await publish(`${prefix}/plug-1/SENSOR`, '{"Time":"2026-11-30T01:00:00","ENERGY":{"Power":12}}'); // another program's JSON
    await publish(`${prefix}/pi-5/clock`, envelope("pi-5", 9, { stream: "clock" })); // a reserved stream name
    await publish(`${prefix}/pi-5/clock/${BOOT_A}`, "{}");
    await publish(`${prefix}/pi-5/status`, "online");
    // The database refuses the last one (jsonb has no NUL); the readings around it still land.
    await publish(`${prefix}/pi-5/env`, envelope("pi-5", 1));
    await publish(`${prefix}/pi-5/env`, envelope("pi-5", 2, { te_ms: 1e300 }));
    await publish(`${prefix}/pi-5/env`, envelope("pi-5", 4, { values: { s: "a\u0000b" } })); // jsonb has no NUL
    await publish(`${prefix}/pi-5/env`, envelope("pi-5", 3));
    await until(() => s.status().consumer.acked === 11, "all 11 acknowledged");
    expect(await count()).toBe(2);
    const dead = (await db.unsafe(
      `SELECT kind, topic, convert_from(payload, 'UTF8') AS payload FROM ${table}_dead_letter ORDER BY id`,
    )) as Array<{ kind: string; topic: string; payload: string }>;
    expect(dead.map((d) => d.kind).sort()).toEqual(
      [
        "device-mismatch",
        "malformed-clock",
        "malformed-reading",
        "malformed-reading",
        "malformed-reading",
        "malformed-reading",
        "refused-by-database",
        "reserved-stream",
      ].sort(),
    );
    expect(dead.find((d) => d.topic === `${prefix}/plug-1/SENSOR`)).toMatchObject({
      kind: "malformed-reading",
      payload: '{"Time":"2026-11-30T01:00:00","ENERGY":{"Power":12}}',
    });
    const st = s.status();
    expect(st.consumer.deadByKind).toEqual({
      "malformed-reading": 4,
      "device-mismatch": 1,
      "reserved-stream": 1,
      "malformed-clock": 1,
    });
    expect(st.writer.refusedByDatabase).toBe(1);
    expect(st.consumer.ignored).toEqual({ status: 1 });
    const logged = logLines.filter(
      (l) => String(l.msg).includes("dead letter") && l.kind === "malformed-reading",
    );
    expect(logged).toHaveLength(1);
  });

  it("holds every acknowledgement through a database outage and lands everything when it is back", async () => {
    const prefix = fresh();
    const s = await sink();
    await publish(`${prefix}/pi-8/env`, envelope("pi-8", 1));
    await until(async () => (await count()) === 1, "first row");
    await pg.stop("immediate");
    for (let seq = 2; seq <= 40; seq++) await publish(`${prefix}/pi-8/env`, envelope("pi-8", seq));
    await until(() => !s.status().writer.databaseUp && s.status().consumer.received === 40, "outage noticed");
    await Bun.sleep(500);
    expect(s.status().consumer.acked).toBe(1);
    const health = await fetch(`http://127.0.0.1:${s.healthPort}/health`);
    expect(health.status).toBe(503);
    expect(((await health.json()) as { database_up: boolean }).database_up).toBe(false);
    await pg.start();
    await until(() => s.status().consumer.acked === 40, "acks after the outage", 30_000);
    expect(await count()).toBe(40);
    expect(s.status().writer.databaseUp).toBe(true);
    const metrics = await (await fetch(`http://127.0.0.1:${s.healthPort}/metrics`)).text();
    expect(metrics).toMatch(/fieldrelay_sink_readings_inserted_total 40/);
    expect(metrics).toMatch(/fieldrelay_sink_commit_failures_total [1-9]/);
  });

  it("health.token guesses are slowed: 5 wrong ones get 401 JSON, then 429 + Retry-After even for the right one, then it is taken", async () => {
    fresh();
    const token = "sink-health-token-0123456789";
    const s = await sink({ health: { token } });
    const get = (bearer: string) =>
      fetch(`http://127.0.0.1:${s.healthPort}/health`, { headers: { authorization: `Bearer ${bearer}` } });
    for (let i = 0; i < 5; i++) {
      const r = await get(`wrong-${i}`);
      expect(r.status).toBe(401);
      expect(((await r.json()) as { error: string }).error).toMatch(/missing or wrong token/);
    }
    const locked = await get(token);
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(((await locked.json()) as { error: string }).error).toMatch(
      /too many wrong tokens from this address/,
    );
    await Bun.sleep(1100);
    expect((await get(token)).status).toBe(200);
  });

  it("two sinks on one shared subscription split the messages and store each reading once", async () => {
    const prefix = fresh();
    const a = await sink({}, "share-a");
    const b = await sink({}, "share-b");
    for (let seq = 1; seq <= 200; seq++) await publish(`${prefix}/pi-9/env`, envelope("pi-9", seq));
    await until(async () => (await count()) === 200, "200 rows");
    expect(a.status().consumer.received + b.status().consumer.received).toBe(200);
    expect(a.status().consumer.received).toBeGreaterThan(0);
    expect(b.status().consumer.received).toBeGreaterThan(0);
  });

  it('an unshared sink (share_group "") gets what was published while it reconnected after a broker restart', async () => {
    // mosquitto 2.0 restores a persistent session's plain subscriptions after its restart, but not
    // its $share ones: this is the configuration that loses nothing on mosquitto (README "Scale").
    const prefix = fresh();
    const s = await sink({ mqtt: { share_group: "", reconnect_s: 2 } }, "unshared");
    await broker.stop("SIGTERM");
    await broker.start();
    await until(() => publisher.connected, "publisher back");
    for (let seq = 1; seq <= 10; seq++) await publish(`${prefix}/pi-10/env`, envelope("pi-10", seq));
    expect(s.status().consumer.connected).toBe(false); // published before the sink was back
    await until(async () => (await count()) === 10, "all 10 after the sink reconnected");
  });
});

describe.skipIf(skip)("fieldrelay sink command", () => {
  let pg: PostgresCluster;
  const ws = new Workspace("fr-sink-cli-");
  beforeAll(async () => {
    pg = await PostgresCluster.start();
  }, 60_000);
  afterAll(async () => {
    await pg?.close();
    ws.cleanup();
  });

  it("--check prints the effective config with the password redacted; a bad config exits 78 naming the key", async () => {
    const good = ws.writeConfig({ postgres: { url: pg.url() } }, "good.toml");
    const r = await run("source", ["sink", "-c", good, "--check"], {
      env: { FIELDRELAY_SINK_POSTGRES_PASSWORD: "very-secret" },
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('table = "readings"');
    expect(r.stdout).not.toContain("very-secret");
    const bad = ws.writeConfig({ postgres: { url: `postgres://u:pw@127.0.0.1:${pg.port}/x` } }, "bad.toml");
    const b = await run("source", ["sink", "-c", bad]);
    expect(b.code).toBe(78);
    expect(b.stderr).toMatch(
      /postgres\.url: must not contain a password; set FIELDRELAY_SINK_POSTGRES_PASSWORD/,
    );
  });

  it("a wrong database password is one line with what to do, exit 69, no stack trace", async () => {
    const config = ws.writeConfig(
      { postgres: { url: pg.url() }, health: { listen: "" }, mqtt: { url: "mqtt://127.0.0.1:1" } },
      "wrong.toml",
    );
    const r = await run("source", ["sink", "-c", config], {
      env: { FIELDRELAY_SINK_POSTGRES_PASSWORD: "wrong" },
    });
    expect(r.code).toBe(69);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /refused the sink: .*password.* — check the user in postgres\.url and FIELDRELAY_SINK_POSTGRES_PASSWORD/,
    );
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
