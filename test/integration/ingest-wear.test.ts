/**
 * Flash wear of the ingest path, measured in the process: the real ingest HTTP server in front of
 * the real SQLite queue (durability full, on the machine's tmpdir), the real publisher and a real
 * mosquitto. A client posts one reading per request and waits for each 201 (the usual local
 * client). The delivery contract says a reading is captured once committed OR acked by the broker,
 * whichever comes first — so with the broker up almost nothing may reach the disk, and with it
 * down readings arriving close together must share their commits (fsyncs).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectAsync, type MqttClient } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/index.ts";
import { startIngestServer } from "../../src/ingest/index.ts";
import { silentLogger } from "../../src/log/index.ts";
import { createPublisher } from "../../src/publish/index.ts";
import { openQueue, type SqliteQueue } from "../../src/queue/index.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { MOSQUITTO, missing } from "../support/tools.ts";

const skip = missing(MOSQUITTO);
const DEVICE = "wear-1";
const stamp = { bootId: "wear-boot", monoNs: 1_000_000_000n, wallMs: 1_764_000_000_000, tq: "ntp" as const };

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Queue + ingest server + publisher (when a broker url is given), with product defaults. */
async function pipeline(brokerUrl: string | undefined): Promise<{ url: string; queue: SqliteQueue }> {
  const dir = mkdtempSync(join(tmpdir(), "fr-ingest-wear-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const defaults = configSchema.parse({ device: { id: DEVICE } });
  const queue = await openQueue({
    path: join(dir, "queue.db"),
    log: silentLogger(),
    bootId: stamp.bootId,
    durability: "full",
    commitIntervalMs: defaults.queue.commit_interval_ms,
    ingestCommitMs: defaults.queue.ingest_commit_ms,
  });
  cleanups.push(() => queue.close());
  const server = startIngestServer({
    listen: { host: "127.0.0.1", port: 0 },
    maxBodyBytes: 65536,
    queue,
    now: () => stamp,
    defaults: { priority: 5, qos: 1 },
    log: silentLogger(),
  });
  cleanups.push(() => server.stop());
  if (brokerUrl !== undefined) {
    const publisher = createPublisher({
      mqtt: configSchema.parse({ device: { id: DEVICE }, mqtt: { url: brokerUrl } }).mqtt,
      deviceId: DEVICE,
      queue,
      stamp: (r) => ({ wallMs: r.wallMs, tq: r.tq, errMs: 0 }),
      log: silentLogger(),
    });
    publisher.start();
    cleanups.push(() => publisher.stop(0));
    await until(() => publisher.stats().connected, "publisher connected");
  }
  return { url: `http://127.0.0.1:${server.port}/v1/readings`, queue };
}

async function post(url: string, i: number): Promise<number[]> {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ stream: "door", values: { n: i } }),
  });
  const text = await r.text();
  if (r.status !== 201) throw new Error(`ingest answered ${r.status}: ${text}`);
  return (JSON.parse(text) as { seqs: number[] }).seqs;
}

describe.skipIf(skip)("Ingest flash wear (one reading per request, waiting for each 201)", () => {
  let broker: MosquittoBroker;
  beforeAll(async () => {
    broker = await MosquittoBroker.start();
  });
  afterAll(async () => broker?.close());

  it("with the broker up, readings are acked before any commit: (almost) none is written to disk", async () => {
    const sub: MqttClient = await connectAsync(broker.url, { reconnectPeriod: 0 });
    cleanups.push(() => sub.endAsync(true));
    const got = new Set<number>();
    sub.on("message", (topic, payload) => {
      if (!topic.endsWith("/status")) got.add((JSON.parse(String(payload)) as { seq: number }).seq);
    });
    await sub.subscribeAsync(`fieldrelay/${DEVICE}/#`, { qos: 1 });
    const { url, queue } = await pipeline(broker.url);
    const n = 100;
    const seqs: number[] = [];
    for (let i = 0; i < n; i++) seqs.push(...(await post(url, i)));
    await until(() => seqs.every((s) => got.has(s)), "every acknowledged reading at the subscriber");
    const s = queue.stats();
    console.log(
      `ingest online: ${n} readings, ${s.committed} written to disk in ${s.commits} commits, ${s.deliveredBeforeCommit} acked before any commit`,
    );
    expect(s.deliveredBeforeCommit).toBeGreaterThanOrEqual(n * 0.9);
    expect(s.committed).toBeLessThanOrEqual(n * 0.1);
  });

  it("with the broker down, readings posted at 50/s share their commits", async () => {
    const { url, queue } = await pipeline(undefined);
    const n = 100;
    const before = queue.stats().commits;
    // Open loop, as sensors' client programs post: one request every 20 ms whatever the answers.
    const answers: Array<Promise<number[]>> = [];
    for (let i = 0; i < n; i++) {
      answers.push(post(url, i));
      await new Promise((r) => setTimeout(r, 20));
    }
    const seqs = (await Promise.all(answers)).flat();
    expect(seqs).toHaveLength(n);
    const s = queue.stats();
    const commits = s.commits - before;
    console.log(`ingest offline at 50/s: ${n} readings, ${s.committed} written in ${commits} commits`);
    expect(s.committed).toBe(n);
    expect(commits).toBeLessThanOrEqual(n / 3);
  });
});
