/**
 * Benchmark: `fieldrelay sink` throughput into PostgreSQL, committed, beside a baseline measured
 * in the same run — the same rows inserted directly with the same client (Bun.sql), the same
 * statement and the same batch size, no MQTT. Targets: ratio ≥ 0.5 and ≥ 20 000 readings/s.
 *
 *   ./node_modules/.bin/bun test/bench/sink.ts [readings] [readings_per_message]
 *
 * The reading mix: 40 devices, three streams (env: temperature/humidity/pressure, power: four
 * values, door: one boolean), one reading in ten still unsynced (boot + mono_ms: those take the
 * correction path: advisory lock, anchor lookup), published as the edge does with batching on
 * (default 50 readings per message, src/wire batch format). The messages are queued in the
 * sink's persistent session on mosquitto before the sink starts, so the clock measures the sink
 * alone: from start to the last commit.
 */
import { SQL } from "bun";
import mqtt from "mqtt";
import { silentLogger } from "../../src/log/index.ts";
import {
  createPgStore,
  migrate,
  type ReadingRow,
  startSink,
  validateSinkConfig,
  type Work,
} from "../../src/sink/index.ts";
import { BATCH_CONTENT_TYPE, encodeBatch } from "../../src/wire/index.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { PostgresCluster } from "../support/postgres.ts";

export interface SinkBenchResult {
  readings: number;
  perMessage: number;
  sinkPerS: number;
  directPerS: number;
  ratio: number;
}

const DEVICES = 40;
const BOOT = "5d7c1e2f-3a4b-4c5d-9e6f-7a8b9c0d1e2f";
const T0 = Date.UTC(2026, 10, 30);

interface Envelope {
  seq: number;
  device: string;
  stream: string;
  ts: string;
  tq: "ntp" | "unsynced";
  te_ms: number;
  values: Record<string, number | boolean>;
  boot?: string;
  mono_ms?: number;
}

/** Readings of one device and stream, in seq order: what the edge batches into one message. */
function makeReadings(n: number): Envelope[][] {
  const groups = new Map<string, Envelope[]>();
  const seqs = new Array<number>(DEVICES).fill(0);
  for (let i = 0; i < n; i++) {
    const d = i % DEVICES;
    const device = `pi-${d}`;
    const kind = Math.floor(i / DEVICES) % 3;
    const stream = ["env", "power", "door"][kind]!;
    const seq = ++seqs[d]!;
    const unsynced = seq % 10 === 0;
    const values: Envelope["values"] =
      kind === 0
        ? { temperature_c: 20 + (i % 97) / 10, humidity_pct: 40 + (i % 31), pressure_hpa: 1013.2 }
        : kind === 1
          ? { voltage_v: 230.1, current_a: (i % 50) / 10, power_w: i % 1000, energy_kwh: i / 1000 }
          : { open: i % 2 === 0 };
    const r: Envelope = {
      seq,
      device,
      stream,
      ts: new Date(T0 + seq * 1000).toISOString(),
      tq: unsynced ? "unsynced" : "ntp",
      te_ms: unsynced ? 60_000 : 15,
      values,
    };
    if (unsynced) {
      r.boot = BOOT;
      r.mono_ms = seq * 1000;
    }
    const key = `${device}/${stream}`;
    const g = groups.get(key) ?? [];
    if (g.length === 0) groups.set(key, g);
    g.push(r);
  }
  return [...groups.values()];
}

function toRow(r: Envelope): ReadingRow {
  return {
    device: r.device,
    seq: r.seq,
    stream: r.stream,
    tsMs: Date.parse(r.ts),
    tq: r.tq,
    teMs: r.te_ms,
    boot: r.boot ?? null,
    monoMs: r.mono_ms ?? null,
    values: JSON.stringify(r.values),
    anomaly: false,
    timeNote: null,
  };
}

export async function runSinkBenchmark(readings = 200_000, perMessage = 50): Promise<SinkBenchResult> {
  const broker = await MosquittoBroker.start({ extra: ["max_queued_messages 0", "max_inflight_messages 0"] });
  const pg = await PostgresCluster.start();
  const db = new SQL({ url: pg.url(), password: pg.password, max: 4 });
  try {
    const config = validateSinkConfig(
      {
        mqtt: { url: broker.url, client_id: "bench-sink" },
        postgres: { url: pg.url(), table: "readings" },
        health: { listen: "" },
      },
      "bench",
    );
    config.postgres.password = pg.password;
    const groups = makeReadings(readings);

    // Baseline: the same rows, direct, same client, same statement, batch_size rows per transaction.
    await migrate(db, "direct");
    const store = createPgStore(db, "direct");
    const rows = groups.flat().map(toRow);
    const t0 = performance.now();
    for (let i = 0; i < rows.length; i += config.sink.batch_size) {
      const work: Work = { kind: "readings", rows: rows.slice(i, i + config.sink.batch_size) };
      await store.writeBatch([work]);
    }
    const directS = (performance.now() - t0) / 1000;

    // The sink: first a session with its subscriptions, then the backlog queued in it.
    const first = await startSink({ config, log: silentLogger(), version: "bench" });
    await Bun.sleep(300);
    await first!.stop();
    const publisher = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: "bench-pub" });
    const messages: Array<{ topic: string; payload: Buffer }> = [];
    for (const g of groups)
      for (let i = 0; i < g.length; i += perMessage) {
        const part = g.slice(i, i + perMessage);
        messages.push({
          topic: `fieldrelay/${part[0]!.device}/${part[0]!.stream}`,
          payload: perMessage === 1 ? Buffer.from(JSON.stringify(part[0])) : Buffer.from(encodeBatch(part)),
        });
      }
    let inflight = 0;
    for (const m of messages) {
      while (inflight > 2000) await Bun.sleep(1);
      inflight++;
      publisher.publish(
        m.topic,
        m.payload,
        { qos: 1, ...(perMessage > 1 ? { properties: { contentType: BATCH_CONTENT_TYPE } } : {}) },
        () => inflight--,
      );
    }
    while (inflight > 0) await Bun.sleep(5);
    await publisher.endAsync();

    const t1 = performance.now();
    const sink = await startSink({ config, log: silentLogger(), version: "bench" });
    while (sink!.status().writer.inserted < readings) await Bun.sleep(5);
    const sinkS = (performance.now() - t1) / 1000;
    await sink!.stop();
    const sinkPerS = readings / sinkS;
    const directPerS = readings / directS;
    return { readings, perMessage, sinkPerS, directPerS, ratio: sinkPerS / directPerS };
  } finally {
    await db.close();
    await pg.close();
    await broker.close();
  }
}

if (import.meta.main) {
  const n = process.argv[2] ? Number(process.argv[2]) : undefined;
  const per = process.argv[3] ? Number(process.argv[3]) : undefined;
  const r = await runSinkBenchmark(n, per);
  console.log(
    `sink: ${Math.round(r.sinkPerS)} readings/s, direct: ${Math.round(r.directPerS)} readings/s, ratio ${r.ratio.toFixed(2)} (${r.readings} readings, ${r.perMessage} per message)`,
  );
  process.exit(0);
}
