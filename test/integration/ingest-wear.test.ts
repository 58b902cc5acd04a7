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
import { LoopExt4 } from "../support/ext4.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { cannotMount } from "../support/tmpfs.ts";
import { MOSQUITTO, missing } from "../support/tools.ts";

const skip = missing(MOSQUITTO);
const noMount = cannotMount();
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
async function pipeline(
  brokerUrl: string | undefined,
  dir = mkdtempSync(join(tmpdir(), "fr-ingest-wear-")),
): Promise<{ url: string; queue: SqliteQueue }> {
  cleanups.push(() => {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {} // a shut-down ext4 refuses even that; its image goes with the test's own cleanup
  });
  const defaults = configSchema.parse({ device: { id: DEVICE } });
  const queue = await openQueue({
    path: join(dir, "queue.db"),
    log: silentLogger(),
    bootId: stamp.bootId,
    durability: "full",
    commitIntervalMs: defaults.queue.commit_interval_ms,
    ingestCommitMs: defaults.queue.ingest_commit_ms,
  });
  cleanups.push(() => queue.close().catch(() => {}));
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

  /** Seqs of the readings a consumer receives. */
  async function subscriber(): Promise<Set<number>> {
    const sub: MqttClient = await connectAsync(broker.url, { reconnectPeriod: 0 });
    cleanups.push(() => sub.endAsync(true));
    const got = new Set<number>();
    sub.on("message", (topic, payload) => {
      if (!topic.endsWith("/status")) got.add((JSON.parse(String(payload)) as { seq: number }).seq);
    });
    await sub.subscribeAsync(`fieldrelay/${DEVICE}/#`, { qos: 1 });
    return got;
  }

  it("with the broker up, readings are acked before any commit: (almost) none is written to disk", async () => {
    const got = await subscriber();
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

  it.skipIf(noMount)(
    "with the disk failing (EIO) and the broker up, readings are still taken: the broker's ack answers the 201",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "fr-ingest-eio-"));
      const fsx = LoopExt4.mount(join(dir, "eio.img"), join(dir, "mnt"), 128); // over min_free_disk_mb
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      cleanups.push(() => fsx.unmount());
      const got = await subscriber();
      const { url, queue } = await pipeline(broker.url, fsx.dir);
      const before = await post(url, -1);
      fsx.shutdown(); // from now on every read and write of queue.db fails with EIO
      const seqs: number[] = [];
      for (let i = 0; i < 20; i++) seqs.push(...(await post(url, i)));
      await until(
        () => [...before, ...seqs].every((s) => got.has(s)),
        "every acknowledged reading delivered",
      );
      // Force a commit: it fails, and the queue says why (what /health reports).
      await queue.flush().catch(() => {});
      expect(queue.stats().lastError ?? "").toMatch(/SQLITE_IOERR|I\/O|EIO|disk I\/O/);
      expect(seqs).toHaveLength(20);
    },
  );
});
