/**
 * The fleet path end to end with the compiled x64 binary in both roles: the edge (`run`, under
 * libfaketime so it boots offline with its clock at 2000-01-01) → mosquitto → two `fieldrelay
 * sink` processes on one shared subscription → PostgreSQL. On the way: the edge is killed -9, the
 * broker restarts, the edge comes back with its backlog, one sink is killed -9 and restarted, and the edge's clock is
 * corrected by "NTP" after its readings were already stored. At the end every reading the broker
 * acknowledged is in the table exactly once with its corrected time, and replaying every message
 * of the run (a second identical run) changes no row.
 */
import { SQL } from "bun";
import mqtt, { type IPublishPacket } from "mqtt";
import { afterAll, describe, expect, it } from "vitest";
import { openQueueReader } from "../../src/queue/index.ts";
import { decodeReadings } from "../../src/wire/index.ts";
import { OfflineClock } from "../support/faketime.ts";
import { binaryMissing, type RunningFieldrelay, spawn, Workspace } from "../support/fieldrelay.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { freePort } from "../support/ports.ts";
import { POSTGRES, PostgresCluster } from "../support/postgres.ts";
import { FAKETIME, MOSQUITTO, missing } from "../support/tools.ts";

const skip = binaryMissing("x64") ?? missing(MOSQUITTO, POSTGRES, FAKETIME);
const DEVICE = "pi-sink";
const TABLE = "readings";

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}

interface Recorded {
  topic: string;
  payload: Buffer;
  retain: boolean;
  contentType: string | undefined;
}

describe.skipIf(skip)("edge binary → mosquitto → two sink processes → PostgreSQL", () => {
  const ws = new Workspace("fr-e2e-sink-");
  let broker: MosquittoBroker | undefined;
  let pg: PostgresCluster | undefined;
  let db: SQL | undefined;
  const running: RunningFieldrelay[] = [];
  afterAll(async () => {
    for (const p of running) p.kill("SIGKILL");
    await db?.close();
    await pg?.close();
    await broker?.close();
    ws.cleanup();
  });

  it("lands every acknowledged reading exactly once, with its corrected time, through crashes and restarts", async () => {
    broker = await MosquittoBroker.start({ persistent: true, extra: ["max_queued_messages 0"] });
    pg = await PostgresCluster.start();
    db = new SQL({ url: pg.url(), password: pg.password, max: 2 });

    // A recorder with a persistent session keeps every message the broker accepted, for the
    // reference set and the replay. Handler before CONNACK: the session's backlog follows it.
    const recorded: Recorded[] = [];
    const recorderOptions = {
      clientId: "e2e-recorder",
      clean: false,
      reconnectPeriod: 200,
      protocolVersion: 5,
    } as const;
    const recorder = mqtt.connect(broker.url, recorderOptions);
    recorder.on("message", (topic, payload, packet: IPublishPacket) =>
      recorded.push({ topic, payload, retain: packet.retain, contentType: packet.properties?.contentType }),
    );
    await new Promise<void>((resolve) => recorder.once("connect", () => resolve()));
    await recorder.subscribeAsync(`fieldrelay/${DEVICE}/#`, { qos: 1 });

    const sinkConfig = async (name: string) =>
      ws.writeConfig(
        {
          mqtt: { url: broker!.url, client_id: `sink-${name}`, reconnect_s: 0.3 },
          postgres: { url: pg!.url(), table: TABLE },
          sink: { commit_interval_ms: 50, retry_s: 0.3 },
          health: { listen: `127.0.0.1:${await freePort()}` },
        },
        `sink-${name}.toml`,
      );
    const sinkA = await sinkConfig("a");
    const sinkB = await sinkConfig("b");
    const startSink = async (config: string) => {
      const p = spawn("x64", ["sink", "-c", config], {
        env: { FIELDRELAY_SINK_POSTGRES_PASSWORD: pg!.password },
      });
      running.push(p);
      await p.waitForLog((l) => l.msg === "subscribed", 30_000);
      return p;
    };
    let a = await startSink(sinkA);
    const b = await startSink(sinkB);

    // The edge boots offline: its clock says 2000-01-01 and nothing says it is synchronised.
    const clock = new OfflineClock(ws.dir);
    const edgeConfig = ws.writeConfig({
      device: { id: DEVICE },
      mqtt: { url: broker.url, min_backoff_s: 0.2, max_backoff_s: 1 },
      queue: { path: ws.queuePath, commit_interval_ms: 100 },
      ingest: { listen: "" },
      health: { listen: "" },
      ...clock.config,
      sensor: [{ name: "sim", driver: "simulated", interval_s: 0.05, seed: 5 }],
    });
    const edge = () => {
      const p = spawn("x64", ["run", "-c", edgeConfig], { env: clock.env });
      running.push(p);
      return p;
    };
    const stored = async () => Number((await db!.unsafe(`SELECT count(*) AS n FROM ${TABLE}`))[0].n);
    const realStart = Date.now();

    // 1. Readings flow while the clock is wrong; then the edge is killed -9 (its backlog grows).
    let e = edge();
    await e.waitForLog((l) => l.msg === "fieldrelay ready", 60_000);
    await until("rows stored", async () => (await stored()) >= 20);
    e.kill("SIGKILL");
    await e.exited;

    // 2. The broker restarts (sessions and queued messages persist). mosquitto 2.0 does not restore
    //    $share subscriptions with a session: whatever is published before the sinks subscribe
    //    again reaches no sink (README "Scale"), so the edge comes back after they did.
    const subscribedLogs = (p: RunningFieldrelay) => p.logs.filter((l) => l.msg === "subscribed").length;
    const [subA, subB] = [subscribedLogs(a), subscribedLogs(b)];
    await broker.stop("SIGTERM");
    await Bun.sleep(500);
    await broker.start();
    await until("sinks subscribed again", () => subscribedLogs(a) > subA && subscribedLogs(b) > subB, 30_000);
    e = edge();
    await e.waitForLog((l) => l.msg === "fieldrelay ready", 60_000);
    await Bun.sleep(1000);

    // 3. One sink is killed -9 while messages flow, and restarted with the same session.
    a.kill("SIGKILL");
    await a.exited;
    await Bun.sleep(700);
    a = await startSink(sinkA);

    // 4. NTP: the clock is stepped to the right time, then sync is reported. The edge publishes
    //    its anchors on the clock topic; the sinks re-stamp what they already stored.
    const realSync = Date.now();
    clock.sync();
    // The edge looks for changed anchors every 5 s (src/runtime/clock-message.ts).
    await until("a clock message", () => recorded.some((m) => m.topic.includes("/clock/")), 30_000);
    await Bun.sleep(500);

    // 5. The edge stops cleanly: everything it captured is delivered to the broker first.
    e.kill("SIGTERM");
    expect(await e.exited).toBe(0);
    const reader = openQueueReader(ws.queuePath);
    expect(reader.stats().rows).toBe(0);
    reader.close();

    // The reference: every reading the broker accepted (the recorder saw each at least once).
    const reference = new Map<number, { ts: string; tq: string }>();
    const readingsTopic = new RegExp(`^fieldrelay/${DEVICE}/[^/]+$`);
    await until("recorder caught up", async () => {
      await Bun.sleep(500);
      return recorded.length > 0;
    });
    const countRecorded = () => {
      reference.clear();
      for (const m of recorded) {
        if (!readingsTopic.test(m.topic) || m.topic.endsWith("/status")) continue;
        for (const r of decodeReadings(m.payload, m.contentType))
          reference.set(r.seq, { ts: r.ts, tq: r.tq });
      }
      return reference.size;
    };
    let last = -1;
    await until("recorder stable", async () => {
      await Bun.sleep(700);
      const n = countRecorded();
      const stable = n === last;
      last = n;
      return stable;
    });
    await until("every reading stored", async () => (await stored()) === reference.size, 60_000).catch(
      async (error) => {
        const have = new Set(
          ((await db!.unsafe(`SELECT seq FROM ${TABLE}`)) as Array<{ seq: string }>).map((r) =>
            Number(r.seq),
          ),
        );
        const missingSeqs = [...reference.keys()].filter((s) => !have.has(s));
        const extra = [...have].filter((s) => !reference.has(s));
        throw new Error(
          `${String(error)}: ${have.size} stored, ${reference.size} published; missing ${missingSeqs.slice(0, 20).join(",")} (${missingSeqs.length}); not in the reference ${extra.slice(0, 20).join(",")} (${extra.length})\nsink a: ${a.stdout.slice(-3000)}\nsink b: ${b.stdout.slice(-3000)}`,
        );
      },
    );
    const rows = (await db.unsafe(
      `SELECT seq, extract(epoch FROM ts) * 1000 AS ts_ms, tq, te_ms FROM ${TABLE} WHERE device = '${DEVICE}' ORDER BY seq`,
    )) as Array<{ seq: string; ts_ms: string; tq: string; te_ms: string | null }>;
    expect(rows.map((r) => Number(r.seq))).toEqual([...reference.keys()].sort((x, y) => x - y));

    // Time: what was published unsynced (with the 2000 clock) is stored corrected, inside the real
    // interval it was taken in; nothing is left in 2000.
    const published = [...reference.entries()];
    const unsynced = published.filter(([, r]) => r.tq === "unsynced").map(([seq]) => seq);
    expect(unsynced.length).toBeGreaterThan(20);
    const bySeq = new Map(rows.map((r) => [Number(r.seq), r]));
    for (const seq of unsynced) {
      const r = bySeq.get(seq)!;
      expect(r.tq).toBe("corrected");
      expect(Number(r.ts_ms)).toBeGreaterThanOrEqual(realStart - 2000);
      expect(Number(r.ts_ms)).toBeLessThanOrEqual(realSync + 2000);
    }
    for (const r of rows) expect(Number(r.ts_ms)).toBeGreaterThan(realStart - 60_000);

    // Metrics: the crashes produced duplicates, and the sinks dropped them.
    const metric = async (p: RunningFieldrelay, name: string) => {
      const port = (p.logs.find((l) => l.msg === "sink health endpoint listening") as { port: number }).port;
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const m = new RegExp(`^fieldrelay_sink_${name} (\\d+)`, "m").exec(text);
      return Number(m?.[1] ?? Number.NaN);
    };

    // A second identical run: every message of the run again, to the same table. Nothing changes.
    const snapshot = async () =>
      await db!.unsafe(`SELECT seq, ts, tq, te_ms, xmin::text AS x FROM ${TABLE} ORDER BY device, seq`);
    const before = await snapshot();
    const receivedBefore =
      (await metric(a, "messages_received_total")) + (await metric(b, "messages_received_total"));
    const replayer = await mqtt.connectAsync(broker.url, { clientId: "e2e-replay", protocolVersion: 5 });
    const replay = recorded.filter((m) => !m.topic.endsWith("/status"));
    for (const m of replay)
      await replayer.publishAsync(m.topic, m.payload, {
        qos: 1,
        retain: m.retain,
        ...(m.contentType ? { properties: { contentType: m.contentType } } : {}),
      });
    await replayer.endAsync();
    await until(
      "replay consumed",
      async () =>
        (await metric(a, "messages_received_total")) + (await metric(b, "messages_received_total")) >=
          receivedBefore + replay.filter((m) => !m.retain).length &&
        (await metric(a, "pending_messages")) + (await metric(b, "pending_messages")) === 0,
      60_000,
    );
    expect(await snapshot()).toEqual(before);

    for (const p of [a, b]) p.kill("SIGTERM");
    expect(await a.exited).toBe(0);
    expect(await b.exited).toBe(0);
    await recorder.endAsync();
  }, 240_000);
});
