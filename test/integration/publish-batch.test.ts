import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type IClientOptions, type IPublishPacket, type MqttClient, connect as mqttConnect } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/index.ts";
import { createLogger, silentLogger } from "../../src/log/index.ts";
import { buildEnvelope, createPublisher, ManualScheduler, type Publisher } from "../../src/publish/index.ts";
import { openQueue, openQueueReader } from "../../src/queue/index.ts";
import type { FieldValue, Queue, QueuedReading } from "../../src/queue/types.ts";
import { BATCH_CONTENT_TYPE, type DecodedReading, decodeReadings } from "../../src/wire/index.ts";
import { MemoryQueue, reading } from "../support/memory-queue.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { MOSQUITTO, missing } from "../support/tools.ts";

const skip = missing(MOSQUITTO);
const DEVICE = "pi-7";

interface Message {
  topic: string;
  readings: DecodedReading[];
  packet: IPublishPacket;
}

/** A consumer that decodes every message on the stream topics with decodeReadings, as the sink does. */
class Decoder {
  readonly messages: Message[] = [];
  readonly errors: string[] = [];
  private constructor(readonly client: MqttClient) {
    client.on("message", (topic, payload, packet) => {
      if (topic.endsWith("/status")) return;
      try {
        this.messages.push({
          topic,
          readings: decodeReadings(payload, packet.properties?.contentType),
          packet,
        });
      } catch (error) {
        this.errors.push(String(error));
      }
    });
  }
  /** The handler is attached before CONNACK, so what a persistent session had queued is not missed. */
  static async open(url: string, options: IClientOptions = {}): Promise<Decoder> {
    const client = mqttConnect(url, { reconnectPeriod: 0, ...options });
    const decoder = new Decoder(client);
    await new Promise<void>((resolve, reject) => {
      client.once("connect", () => resolve());
      client.once("error", reject);
    });
    await client.subscribeAsync(`fieldrelay/${DEVICE}/+`, { qos: 1 });
    return decoder;
  }
  readings(): DecodedReading[] {
    return this.messages.flatMap((m) => m.readings);
  }
  distinctSeqs(): Set<number> {
    return new Set(this.readings().map((r) => r.seq));
  }
  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** What the clock would give: a bound that grows for time that can still improve. */
const stamp = (r: QueuedReading) => ({
  wallMs: r.wallMs,
  tq: r.tq,
  errMs: r.tq === "ntp" ? 12 : 1000 + r.seq / 7,
});
/** The envelope the publisher sends for a reading: what the decoded reading must equal exactly. */
const expected = (r: QueuedReading) => buildEnvelope(r, DEVICE, stamp(r));

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function start(
  url: string,
  queue: Queue,
  mqtt: Record<string, unknown>,
  extra: { scheduler?: ManualScheduler; logs?: Array<Record<string, unknown>> } = {},
): Publisher {
  const publisher = createPublisher({
    mqtt: configSchema.parse({
      device: { id: DEVICE },
      mqtt: { url, min_backoff_s: 0.1, max_backoff_s: 1, ...mqtt },
    }).mqtt,
    deviceId: DEVICE,
    queue,
    stamp,
    log: extra.logs
      ? createLogger({
          level: "debug",
          destination: { write: (s: string) => extra.logs!.push(JSON.parse(s)) },
        })
      : silentLogger(),
    ...(extra.scheduler ? { scheduler: extra.scheduler, monoMs: extra.scheduler.monoMs } : {}),
  });
  cleanups.push(() => publisher.stop(0));
  publisher.start();
  return publisher;
}

function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), "fr-batch-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe.skipIf(skip)("Batched delivery to mosquitto", () => {
  let broker: MosquittoBroker;
  beforeAll(async () => {
    broker = await MosquittoBroker.start({ persistent: true });
  });
  afterAll(async () => broker?.close());

  it("packs a backlog into full batches per stream on the stream's topic; one PUBACK acks each batch; decode is exact", async () => {
    const sub = await Decoder.open(broker.url, { protocolVersion: 5 });
    cleanups.push(() => sub.close());
    const queue = new MemoryQueue();
    const rows: QueuedReading[] = [];
    for (let i = 0; i < 1400; i++) {
      const stream = i % 14 < 11 ? "env" : "door";
      const r = reading({
        stream,
        wallMs: 1_764_460_000_000 + i * 1000,
        values: { n: i, temperature_c: 20 + (i % 7) / 4 },
      });
      const res = queue.capture(r);
      if (res.ok) rows.push({ ...r, seq: res.seq });
    }
    const scheduler = new ManualScheduler();
    const publisher = start(
      broker.url,
      queue,
      { protocol_version: 5, batch: { enabled: true, max_readings: 500, max_delay_ms: 2000 } },
      { scheduler },
    );
    // Two full env batches go at once; the rest (100 env, 300 door) wait for max_delay_ms.
    await until(() => sub.messages.length === 2 && queue.size === 400, "two full batches acked");
    expect(sub.messages.map((m) => [m.topic, m.readings.length])).toEqual([
      [`fieldrelay/${DEVICE}/env`, 500],
      [`fieldrelay/${DEVICE}/env`, 500],
    ]);
    scheduler.advance(1999);
    await new Promise((r) => setTimeout(r, 50));
    expect(sub.messages).toHaveLength(2);
    scheduler.advance(1);
    await until(() => sub.messages.length === 4 && queue.size === 0, "the held partial batches");
    expect(
      sub.messages
        .slice(2)
        .map((m) => [m.topic, m.readings.length])
        .sort(),
    ).toEqual([
      [`fieldrelay/${DEVICE}/door`, 300],
      [`fieldrelay/${DEVICE}/env`, 100],
    ]);
    for (const m of sub.messages) expect(m.packet.properties?.contentType).toBe(BATCH_CONTENT_TYPE);
    expect(sub.errors).toEqual([]);
    const bySeq = new Map(sub.readings().map((r) => [r.seq, r]));
    expect(bySeq.size).toBe(1400);
    for (const row of rows) expect(bySeq.get(row.seq)).toEqual(expected(row));
    expect(publisher.stats()).toMatchObject({ published: 1400, delivered: 1400, inflight: 0 });
  });

  it("acks live readings batched within max_delay_ms before their commit deadline: nothing is written to flash", async () => {
    const sub = await Decoder.open(broker.url);
    cleanups.push(() => sub.close());
    const scheduler = new ManualScheduler();
    const dir = tmp();
    const queue = await openQueue({
      path: join(dir, "queue.db"),
      log: silentLogger(),
      commitIntervalMs: 1000,
      scheduler,
      monoMs: scheduler.monoMs,
    });
    cleanups.push(() => queue.close());
    const publisher = start(
      broker.url,
      queue,
      { batch: { enabled: true, max_delay_ms: 500 } },
      { scheduler },
    );
    await until(() => publisher.stats().connected, "connected");
    for (let i = 0; i < 20; i++) {
      queue.capture(reading({ values: { n: i } }));
      await new Promise((r) => setTimeout(r, 1)); // the publisher takes it (a microtask away)
      scheduler.advance(10);
    }
    scheduler.advance(300); // 500 ms after the first: the batch falls due
    await until(() => queue.stats().delivered === 20, "the batch acked");
    scheduler.advance(1000); // every commit deadline has passed
    expect(queue.stats()).toMatchObject({ captured: 20, deliveredBeforeCommit: 20, committed: 0, rows: 0 });
    expect(sub.messages).toHaveLength(1);
    expect(sub.readings()).toHaveLength(20);
  });

  it("sends a reading at or above alone_priority at once, alone, as the plain envelope", async () => {
    const sub = await Decoder.open(broker.url, { protocolVersion: 5 });
    cleanups.push(() => sub.close());
    const queue = new MemoryQueue();
    const scheduler = new ManualScheduler();
    start(
      broker.url,
      queue,
      { protocol_version: 5, batch: { enabled: true, max_delay_ms: 60_000, alone_priority: 9 } },
      { scheduler },
    );
    await until(() => scheduler.pending === 0, "connected");
    for (let i = 0; i < 5; i++) queue.capture(reading());
    queue.capture(reading({ priority: 9, stream: "alarm", values: { smoke: true } }));
    await until(() => sub.messages.length === 1, "the alarm");
    const [alarm] = sub.messages;
    expect(alarm!.topic).toBe(`fieldrelay/${DEVICE}/alarm`);
    expect(alarm!.readings).toEqual([expect.objectContaining({ seq: 6, values: { smoke: true } })]);
    expect(alarm!.packet.properties?.userProperties).toEqual({ seq: "6" });
    expect(JSON.parse(String(alarm!.packet.payload)).seq).toBe(6);
    // The alarm's PUBACK may reach the publisher after the subscriber has the message: wait for
    // its ack, then check the others still wait for company or for max_delay_ms.
    await until(() => queue.size === 5, "the alarm acked");
    await new Promise((r) => setTimeout(r, 50));
    expect(queue.size).toBe(5);
  });

  it("paces messages to max_rate_bytes: after each message it waits until the link has carried its bytes", async () => {
    const sub = await Decoder.open(broker.url);
    cleanups.push(() => sub.close());
    const queue = new MemoryQueue();
    // Random text does not compress: each batch of 10 is well over the 1000 B burst.
    const pad = () => Buffer.from(crypto.getRandomValues(new Uint8Array(90))).toString("hex");
    for (let i = 0; i < 30; i++) queue.capture(reading({ values: { n: i, pad: pad() } }));
    const scheduler = new ManualScheduler();
    start(
      broker.url,
      queue,
      { max_rate_bytes: 1000, batch: { enabled: true, max_readings: 10, max_delay_ms: 10 } },
      { scheduler },
    );
    await until(() => sub.messages.length === 1, "the first batch");
    await new Promise((r) => setTimeout(r, 100));
    expect(sub.messages).toHaveLength(1); // the second waits for the byte budget
    const payload = sub.messages[0]!.packet.payload as Buffer;
    const owedMs = ((payload.length + `fieldrelay/${DEVICE}/env`.length) * 1000) / 1000;
    // The burst allowance is one second's worth (1000 B): the wait is what the message cost beyond it.
    expect(scheduler.pendingDelaysMs()).toContain(Math.ceil(owedMs - 1000 + 1));
    scheduler.advance(Math.ceil(owedMs));
    await until(() => sub.messages.length === 2, "the second batch after the wait");
  });

  it("delivers every reading through a broker outage mid-drain, in batches, each seq decoded exactly", async () => {
    const sub = await Decoder.open(broker.url, { clientId: "batch-outage-sub", clean: false });
    const dir = tmp();
    const queue = await openQueue({ path: join(dir, "queue.db"), log: silentLogger(), commitIntervalMs: 20 });
    cleanups.push(() => queue.close());
    const rows = new Map<number, QueuedReading>();
    const capture = (n: number) => {
      for (let i = 0; i < n; i++) {
        const r = reading({
          stream: i % 3 === 0 ? "door" : "env",
          priority: 1 + (i % 4),
          // Half of them offline-stamped: their envelopes carry boot and mono_ms too.
          tq: i % 2 ? "unsynced" : "ntp",
          monoNs: BigInt(rows.size) * 250_000_000n + 123_456n,
          wallMs: 1_764_460_000_000 + rows.size * 250,
          values: { n: rows.size, temperature_c: 21 + (i % 10) / 10 },
        });
        const res = queue.capture(r);
        if (res.ok) rows.set(res.seq, { ...r, seq: res.seq });
      }
    };
    capture(3000);
    await queue.flush();
    const publisher = start(broker.url, queue, {
      max_inflight: 4,
      max_rate: 40, // messages/s: slow enough to stop the broker mid-drain
      batch: { enabled: true, max_readings: 50, max_delay_ms: 50 },
    });
    await until(() => sub.messages.length >= 8, "drain under way");
    await broker.stop("SIGTERM"); // keeps the subscriber's session and what is queued for it
    await sub.client.endAsync(true);
    await until(() => !publisher.stats().connected, "outage noticed");
    capture(500);
    await broker.start();
    const sub2 = await Decoder.open(broker.url, { clientId: "batch-outage-sub", clean: false });
    cleanups.push(() => sub2.close());
    await until(() => queue.stats().rows === 0, "backlog drained", 30_000);
    const received = [...sub.readings(), ...sub2.readings()];
    await until(
      () => new Set([...sub.distinctSeqs(), ...sub2.distinctSeqs()]).size === rows.size,
      "all received",
    );
    for (const r of [...sub.readings(), ...sub2.readings()]) expect(r).toEqual(expected(rows.get(r.seq)!));
    expect([...sub.errors, ...sub2.errors]).toEqual([]);
    // Batches, not single messages: far fewer messages than readings (each stream closes at 50).
    const messages = sub.messages.length + sub2.messages.length;
    expect(messages).toBeLessThan(received.length / 20);
  });

  it("after a kill -9 with batches inflight, a restart resends those readings (same seqs) and loses none", async () => {
    const dir = tmp();
    const path = join(dir, "queue.db");
    const rows = new Map<number, QueuedReading>();
    {
      const q = await openQueue({ path, log: silentLogger() });
      for (let i = 0; i < 1000; i++) {
        const r = reading({
          stream: i % 2 ? "env" : "door",
          wallMs: 1_764_460_000_000 + i * 100,
          values: { n: i },
        });
        const res = q.capture(r);
        if (res.ok) rows.set(res.seq, { ...r, seq: res.seq });
      }
      await q.close();
    }
    const sub = await Decoder.open(broker.url);
    cleanups.push(() => sub.close());
    const child = Bun.spawn(
      [
        process.execPath,
        fileURLToPath(new URL("../support/batch-publisher-child.ts", import.meta.url)),
        path,
        broker.url,
      ],
      { stdout: "pipe", stderr: "pipe" },
    );
    cleanups.push(() => child.kill("SIGKILL"));
    await until(() => sub.messages.length >= 1, "first batch from the child");
    broker.pause(); // nothing is acked from now on: the child's next batches stay inflight
    cleanups.push(() => broker.resume());
    let inflightAtKill: number[] = [];
    await until(() => {
      const reader = openQueueReader(path);
      inflightAtKill = reader
        .peek(200)
        .filter((r) => r.inflight)
        .map((r) => r.seq);
      reader.close();
      return inflightAtKill.length > 50; // more than one batch of 50
    }, "batches inflight in the child's queue file");
    child.kill("SIGKILL");
    await child.exited;
    broker.resume();

    const queue = await openQueue({ path, log: silentLogger() });
    cleanups.push(() => queue.close());
    // The restart sends the inflight rows first, regrouped into batches, with their seqs.
    expect(
      queue
        .next(inflightAtKill.length, new Set())
        .map((r) => r.seq)
        .sort((a, b) => a - b),
    ).toEqual([...inflightAtKill].sort((a, b) => a - b));
    const publisher = start(broker.url, queue, {
      batch: { enabled: true, max_readings: 50, max_delay_ms: 20 },
    });
    await until(() => queue.stats().rows === 0, "queue drained after the restart");
    await until(() => sub.distinctSeqs().size === rows.size, "every reading at the subscriber");
    expect(publisher.stats().resent).toBeGreaterThanOrEqual(inflightAtKill.length);
    for (const r of sub.readings()) expect(r).toEqual(expected(rows.get(r.seq)!));
    expect(sub.errors).toEqual([]);
  });
});

describe.skipIf(skip)("A batch the broker drops the connection over (packet too large)", () => {
  it("is halved on every early drop until the reading that causes it is alone, which goes to dead letters after its strikes", async () => {
    const broker = await MosquittoBroker.start({ extra: ["max_packet_size 3000"] });
    cleanups.push(() => broker.close());
    const sub = await Decoder.open(broker.url);
    cleanups.push(() => sub.close());
    const queue = new MemoryQueue();
    const rows = new Map<number, QueuedReading>();
    for (let i = 0; i < 12; i++) {
      // One reading carries 6 KB of random text: alone or in any batch it exceeds the broker's limit.
      const values: Record<string, FieldValue> = { n: i };
      if (i === 5) values.blob = Buffer.from(crypto.getRandomValues(new Uint8Array(4500))).toString("base64");
      const r = reading({ values });
      const res = queue.capture(r);
      if (res.ok) rows.set(res.seq, { ...r, seq: res.seq });
    }
    const logs: Array<Record<string, unknown>> = [];
    start(
      broker.url,
      queue,
      { max_backoff_s: 1, batch: { enabled: true, max_readings: 8, max_delay_ms: 2000 } },
      { logs },
    );
    await until(() => queue.size === 0, "every reading delivered or dead-lettered", 30_000);
    expect(queue.deadLetters.map((d) => d.seq)).toEqual([6]);
    expect([...sub.distinctSeqs()].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]);
    for (const r of sub.readings()) expect(r).toEqual(expected(rows.get(r.seq)!));
  });
});

describe.skipIf(skip)("A batch the broker refuses (ACL)", () => {
  it("is split down to single readings: the refused ones go to dead letters, their neighbours are delivered", async () => {
    const broker = await MosquittoBroker.start({
      acl: [
        "topic read #",
        `topic write fieldrelay/${DEVICE}/env`,
        `topic write fieldrelay/${DEVICE}/status`,
      ],
    });
    cleanups.push(() => broker.close());
    const sub = await Decoder.open(broker.url, { protocolVersion: 5 });
    cleanups.push(() => sub.close());
    const queue = new MemoryQueue();
    const rows = new Map<number, QueuedReading>();
    // env is allowed; "secret" is denied by the ACL. Interleaved, same priority.
    for (let i = 0; i < 40; i++) {
      const r = reading({ stream: i % 4 === 1 ? "secret" : "env", values: { n: i } });
      const res = queue.capture(r);
      if (res.ok) rows.set(res.seq, { ...r, seq: res.seq });
    }
    const secret = [...rows.values()].filter((r) => r.stream === "secret").map((r) => r.seq);
    const logs: Array<Record<string, unknown>> = [];
    const publisher = start(
      broker.url,
      queue,
      { protocol_version: 5, batch: { enabled: true, max_readings: 8, max_delay_ms: 10 } },
      { logs },
    );
    await until(() => queue.size === 0, "every reading delivered or dead-lettered");
    expect(queue.deadLetters.map((d) => d.seq).sort((a, b) => a - b)).toEqual(secret);
    expect(queue.deadLetters[0]!.reason).toMatch(/0x87 Not authorized/);
    const delivered = [...sub.distinctSeqs()].sort((a, b) => a - b);
    expect(delivered).toEqual([...rows.keys()].filter((s) => !secret.includes(s)));
    for (const r of sub.readings()) expect(r).toEqual(expected(rows.get(r.seq)!));
    // 10 secret readings in batches of 8 and 2: each batch split in halves down to its single readings.
    expect(logs.filter((l) => /splitting it/.test(String(l.msg))).length).toBe(7 + 1);
    expect(publisher.stats()).toMatchObject({ delivered: 30, inflight: 0 });
  });
});
