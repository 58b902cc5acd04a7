import { fileURLToPath } from "node:url";
import {
  connectAsync,
  type IClientOptions,
  type IPublishPacket,
  type MqttClient,
  connect as mqttConnect,
} from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Config, configSchema } from "../../src/config/index.ts";
import { createLogger } from "../../src/log/index.ts";
import {
  createPublisher,
  ManualScheduler,
  type Publisher,
  type PublisherOptions,
} from "../../src/publish/index.ts";
import { makeCerts, type TestCerts } from "../support/certs.ts";
import { MemoryQueue, reading } from "../support/memory-queue.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { freePort } from "../support/ports.ts";
import { MOSQUITTO, missing, OPENSSL } from "../support/tools.ts";

const skip = missing(MOSQUITTO, OPENSSL);
const DEVICE = "pi-7";

interface Received {
  topic: string;
  payload: string;
  packet: IPublishPacket;
}

/** Subscriber is a plain mqtt.js client recording every message, as a consumer would. */
class Subscriber {
  readonly messages: Received[] = [];
  private constructor(readonly client: MqttClient) {
    client.on("message", (topic, payload, packet) =>
      this.messages.push({ topic, payload: String(payload), packet }),
    );
  }
  static async open(url: string, filter: string, options: IClientOptions = {}): Promise<Subscriber> {
    const client = await connectAsync(url, { reconnectPeriod: 0, ...options });
    const sub = new Subscriber(client);
    await client.subscribeAsync(filter, { qos: 1 });
    return sub;
  }
  readings(): Array<{ seq: number; [k: string]: unknown }> {
    return this.messages.filter((m) => !m.topic.endsWith("/status")).map((m) => JSON.parse(m.payload));
  }
  seqs(): number[] {
    return this.readings().map((r) => r.seq);
  }
  /** Status messages, including a retained copy from an earlier test. */
  statuses(): Array<{ payload: string; retain: boolean }> {
    return this.messages
      .filter((m) => m.topic.endsWith("/status"))
      .map((m) => ({ payload: m.payload, retain: m.packet.retain }));
  }
  /** Status messages published while subscribed (not a retained copy). */
  liveStatuses(): string[] {
    return this.statuses()
      .filter((s) => !s.retain)
      .map((s) => s.payload);
  }
  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function mqttConfig(overrides: Record<string, unknown>): Config["mqtt"] {
  return configSchema.parse({ device: { id: DEVICE }, mqtt: overrides }).mqtt;
}

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Harness {
  publisher: Publisher;
  queue: MemoryQueue;
  scheduler: ManualScheduler;
  logs: Array<Record<string, unknown>>;
  clients: MqttClient[];
}

/** A publisher under test control: its timers run only when the test advances the ManualScheduler. */
function harness(
  mqtt: Record<string, unknown>,
  queue = new MemoryQueue(),
  extra: Partial<PublisherOptions> = {},
) {
  const scheduler = new ManualScheduler();
  const logs: Array<Record<string, unknown>> = [];
  const clients: MqttClient[] = [];
  const publisher = createPublisher({
    mqtt: mqttConfig({ min_backoff_s: 0.1, max_backoff_s: 1, ...mqtt }),
    deviceId: DEVICE,
    queue,
    stamp: (r) => ({ wallMs: r.wallMs, tq: r.tq, errMs: 0 }),
    log: createLogger({ level: "debug", destination: { write: (s: string) => logs.push(JSON.parse(s)) } }),
    random: () => 0.5,
    monoMs: scheduler.monoMs,
    scheduler,
    connect: (url, options) => {
      const c = mqttConnect(url, options);
      clients.push(c);
      return c;
    },
    ...extra,
  });
  cleanups.push(() => publisher.stop(0));
  const h: Harness = { publisher, queue, scheduler, logs, clients };
  return h;
}

describe.skipIf(skip)("Publisher against mosquitto", () => {
  let broker: MosquittoBroker;
  beforeAll(async () => {
    broker = await MosquittoBroker.start();
  });
  afterAll(async () => broker?.close());

  it("delivers a backlog in priority DESC, seq ASC order with the JSON envelope and an 'online' birth", async () => {
    const sub = await Subscriber.open(broker.url, `fieldrelay/${DEVICE}/#`);
    cleanups.push(() => sub.close());
    const { publisher, queue } = harness({ url: broker.url });
    const priorities = [5, 1, 9, 5, 9, 3, 10, 1, 5, 9];
    for (const p of priorities) queue.capture(reading({ priority: p, values: { temperature_c: p } }));
    queue.capture(reading({ priority: 5, anomaly: true, stream: "door" }));
    publisher.start();
    await until(() => sub.seqs().length === 11, "11 readings");
    expect(sub.seqs()).toEqual([7, 3, 5, 10, 1, 4, 9, 11, 6, 2, 8]);
    const first = sub.messages.find((m) => m.topic === `fieldrelay/${DEVICE}/env`)!;
    expect(JSON.parse(first.payload)).toEqual({
      seq: 7,
      device: DEVICE,
      stream: "env",
      ts: "2026-01-02T03:04:05.678Z",
      tq: "ntp",
      te_ms: 0,
      values: { temperature_c: 10 },
    });
    expect(sub.messages.find((m) => m.topic.endsWith("/door"))!.payload).toContain('"anomaly":true');
    expect(sub.liveStatuses()).toEqual(["online"]);
    await until(() => queue.size === 0, "queue drained");
    expect(publisher.stats()).toMatchObject({ connected: true, published: 11, delivered: 11, inflight: 0 });
    // A late subscriber finds the retained birth.
    const late = await Subscriber.open(broker.url, `fieldrelay/${DEVICE}/status`);
    cleanups.push(() => late.close());
    await until(() => late.statuses().length === 1, "retained status");
    expect(late.statuses()[0]).toEqual({ payload: "online", retain: true });
  });

  it("keeps queuing through a broker outage and drains the backlog in priority order with no seq gap", async () => {
    const sub1 = await Subscriber.open(broker.url, `fieldrelay/${DEVICE}/+`);
    const { publisher, queue, scheduler } = harness({ url: broker.url });
    publisher.start();
    for (let i = 0; i < 10; i++) queue.capture(reading());
    await until(() => sub1.seqs().length === 10, "first 10");
    await sub1.close();

    await broker.stop();
    await until(() => !publisher.stats().connected && scheduler.pending === 1, "outage noticed");
    for (let i = 0; i < 30; i++) queue.capture(reading({ priority: [2, 8, 5][i % 3]! }));
    // Attempts fail while the broker is down; the backoff grows.
    for (let i = 0; i < 3; i++) {
      const before = scheduler.requestedMs.length;
      scheduler.runNext();
      await until(() => scheduler.requestedMs.length > before, `failed attempt ${i}`);
    }
    expect(scheduler.requestedMs.slice(-4)).toEqual([50, 100, 200, 400]);
    expect(publisher.stats().lastError).toMatch(/ECONNREFUSED/);
    expect(queue.size).toBe(30);

    await broker.start();
    const sub2 = await Subscriber.open(broker.url, `fieldrelay/${DEVICE}/+`);
    cleanups.push(() => sub2.close());
    scheduler.runNext();
    await until(() => sub2.seqs().length === 30, "backlog of 30");
    await until(() => queue.size === 0, "backlog acked");
    const backlog = queue.ackLog.slice(10);
    expect(sub2.seqs()).toEqual(backlog);
    const byPriority = sub2.readings().map((r) => (r.seq - 11) % 3);
    // priority 8 (i%3 = 1) first, then 5 (2), then 2 (0); seq ascending within each.
    expect(byPriority).toEqual([...Array(10).fill(1), ...Array(10).fill(2), ...Array(10).fill(0)]);
    const all = [...sub1.seqs(), ...sub2.seqs()].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(publisher.stats()).toMatchObject({
      connected: true,
      reconnects: 4,
      backoffS: 0,
      lastError: undefined,
    });
  });

  it("resends readings left unacked by a killed broker, before the rest of the backlog", async () => {
    const N = 3000;
    const { publisher, queue, scheduler } = harness({ url: broker.url, max_inflight: 200 });
    for (let i = 0; i < N; i++) queue.capture(reading());
    publisher.start();
    await until(() => publisher.stats().delivered >= 300, "drain under way", 20_000);
    await broker.stop(); // SIGKILL with a full inflight window
    await until(() => !publisher.stats().connected, "loss noticed");
    const leftInflight = queue.stats().inflight;
    expect(leftInflight).toBeGreaterThan(0);
    const inflightSeqs = queue.next(leftInflight, new Set()).map((r) => r.seq);
    const ackedBefore = new Set(queue.ackLog);

    await broker.start();
    const sub = await Subscriber.open(broker.url, `fieldrelay/${DEVICE}/+`);
    cleanups.push(() => sub.close());
    scheduler.runNext();
    await until(() => queue.size === 0, "all delivered", 20_000);
    await until(() => sub.seqs().length >= N - ackedBefore.size, "subscriber caught up");
    // The rows inflight at the kill come first, then the rest in order.
    expect(sub.seqs().slice(0, inflightSeqs.length)).toEqual(inflightSeqs);
    for (let seq = 1; seq <= N; seq++) {
      if (!ackedBefore.has(seq) && !sub.seqs().includes(seq)) throw new Error(`seq ${seq} was lost`);
    }
    expect(publisher.stats().resent).toBe(leftInflight);
  });

  it("sends seq as a user property and the message expiry under MQTT 5", async () => {
    const sub = await Subscriber.open(broker.url, `fieldrelay/${DEVICE}/+`, { protocolVersion: 5 });
    cleanups.push(() => sub.close());
    const { publisher, queue } = harness({ url: broker.url, protocol_version: 5, message_expiry_s: 3600 });
    queue.capture(reading());
    queue.capture(reading({ qos: 0 }));
    publisher.start();
    await until(() => sub.seqs().length === 2, "2 readings");
    for (const m of sub.messages.filter((x) => !x.topic.endsWith("/status"))) {
      const seq = JSON.parse(m.payload).seq;
      expect(m.packet.properties?.userProperties).toEqual({ seq: String(seq) });
      const expiry = m.packet.properties?.messageExpiryInterval ?? 0;
      expect(expiry).toBeGreaterThan(3590);
      expect(expiry).toBeLessThanOrEqual(3600);
    }
    await until(() => queue.size === 0, "acked (QoS 0 on write, QoS 1 on PUBACK)");
  });

  it("publishes the will 'offline' when the connection dies, and 'online' again on reconnect", async () => {
    const sub = await Subscriber.open(broker.url, `fieldrelay/${DEVICE}/status`);
    cleanups.push(() => sub.close());
    const { publisher, scheduler, clients } = harness({ url: broker.url });
    publisher.start();
    await until(() => sub.liveStatuses().length === 1, "birth");
    clients[0]!.stream.destroy(); // the process "dies": no DISCONNECT reaches the broker
    await until(() => sub.liveStatuses().length === 2, "will");
    await until(() => scheduler.pending === 1, "reconnect scheduled");
    scheduler.runNext();
    await until(() => sub.liveStatuses().length === 3, "second birth");
    expect(sub.liveStatuses()).toEqual(["online", "offline", "online"]);
  });

  it("publishes the will 'offline' when the publisher's process is killed with SIGKILL", async () => {
    const sub = await Subscriber.open(broker.url, `fieldrelay/${DEVICE}/status`);
    cleanups.push(() => sub.close());
    const src = fileURLToPath(new URL("../../src/publish/index.ts", import.meta.url));
    const config = fileURLToPath(new URL("../../src/config/index.ts", import.meta.url));
    const memoryQueue = fileURLToPath(new URL("../support/memory-queue.ts", import.meta.url));
    const code = `
      const { createPublisher } = await import(${JSON.stringify(src)});
      const { configSchema } = await import(${JSON.stringify(config)});
      const { MemoryQueue } = await import(${JSON.stringify(memoryQueue)});
      const mqtt = configSchema.parse({ device: { id: "${DEVICE}" }, mqtt: { url: "${broker.url}" } }).mqtt;
      createPublisher({ mqtt, deviceId: "${DEVICE}", queue: new MemoryQueue(), stamp: (r) => r }).start();
      setInterval(() => {}, 1000);
    `;
    const child = Bun.spawn([process.execPath, "-e", code], { stdout: "ignore", stderr: "pipe" });
    cleanups.push(() => child.kill("SIGKILL"));
    await until(() => sub.liveStatuses().length === 1, "birth from the child");
    child.kill("SIGKILL");
    await child.exited;
    await until(() => sub.liveStatuses().length === 2, "will");
    expect(sub.liveStatuses()).toEqual(["online", "offline"]);
  });

  it("stop() waits for inflight acks, publishes nothing more, says 'offline' once and disconnects cleanly", async () => {
    const sub = await Subscriber.open(broker.url, `fieldrelay/${DEVICE}/#`);
    cleanups.push(() => sub.close());
    const { publisher, queue } = harness({ url: broker.url, max_inflight: 500 });
    for (let i = 0; i < 5000; i++) queue.capture(reading());
    publisher.start();
    await until(() => publisher.stats().inflight > 0, "inflight");
    const result = await publisher.stop(10_000);
    const stats = publisher.stats();
    expect(result).toEqual({ unacked: 0 });
    expect(stats.delivered).toBe(stats.published);
    expect(queue.stats().inflight).toBe(0);
    expect(queue.size).toBe(5000 - stats.published);
    await until(() => sub.liveStatuses().length >= 2, "offline");
    await new Promise((r) => setTimeout(r, 300)); // a will would arrive right after the socket closed
    expect(sub.liveStatuses()).toEqual(["online", "offline"]);
    expect(sub.seqs()).toHaveLength(stats.published);
    expect(publisher.stats().connected).toBe(false);
  });

  it("rejects a refused connection to a port nobody listens on, keeps the readings and retries", async () => {
    const { publisher, queue, scheduler, logs } = harness({ url: "mqtt://127.0.0.1:1" });
    queue.capture(reading());
    publisher.start();
    for (let i = 0; i < 4; i++) {
      await until(() => scheduler.pending === 1, `attempt ${i}`);
      scheduler.runNext();
    }
    expect(queue.size).toBe(1);
    expect(logs.filter((l) => l.level === "warn")).toHaveLength(1);
  });
});

describe.skipIf(skip)("Publisher against a broker that refuses it", () => {
  let broker: MosquittoBroker;
  beforeAll(async () => {
    broker = await MosquittoBroker.start({ extra: ["allow_anonymous false"] });
  });
  afterAll(async () => broker?.close());

  it("records the CONNACK refusal, keeps the readings and backs off", async () => {
    const { publisher, queue, scheduler, logs } = harness({
      url: broker.url,
      username: "u",
      password: "wrong",
    });
    queue.capture(reading());
    publisher.start();
    for (let i = 0; i < 3; i++) {
      await until(() => scheduler.pending === 1, `attempt ${i}`);
      scheduler.runNext();
    }
    expect(publisher.stats().lastError).toMatch(/Connection refused: Not authorized/);
    expect(scheduler.requestedMs).toEqual([50, 100, 200]);
    expect(queue.size).toBe(1);
    expect(logs.filter((l) => l.level === "warn")).toHaveLength(1);
    expect(JSON.stringify(logs)).not.toContain("wrong"); // the password never reaches the log
  });
});

describe.skipIf(skip)("Publisher over TLS", () => {
  let certs: TestCerts;
  let broker: MosquittoBroker;
  let mtlsBroker: MosquittoBroker;
  beforeAll(async () => {
    certs = makeCerts();
    const tls = { ca: certs.ca, cert: certs.serverCert, key: certs.serverKey };
    broker = await MosquittoBroker.start({ tls });
    mtlsBroker = await MosquittoBroker.start({ tls: { ...tls, requireCertificate: true } });
  });
  afterAll(async () => {
    await broker?.close();
    await mtlsBroker?.close();
    certs?.remove();
  });

  it("delivers over WebSocket (ws://) and TLS WebSocket (wss://, verified against the CA)", async () => {
    const wsPort = await freePort();
    const wssPort = await freePort();
    const wsBroker = await MosquittoBroker.start({
      extra: [
        `listener ${wsPort} 127.0.0.1`,
        "protocol websockets",
        `listener ${wssPort} 127.0.0.1`,
        "protocol websockets",
        `cafile ${certs.ca}`,
        `certfile ${certs.serverCert}`,
        `keyfile ${certs.serverKey}`,
      ],
    });
    cleanups.push(() => wsBroker.close());
    const sub = await Subscriber.open(wsBroker.url, `fieldrelay/${DEVICE}/+`);
    cleanups.push(() => sub.close());
    for (const [url, tls] of [
      [`ws://127.0.0.1:${wsPort}`, {}],
      [`wss://localhost:${wssPort}`, { ca: certs.ca }],
    ] as const) {
      const { publisher, queue } = harness({ url, tls });
      const before = sub.seqs().length;
      queue.capture(reading());
      publisher.start();
      await until(() => sub.seqs().length === before + 1, `reading over ${url}`);
      expect(publisher.stats().lastError).toBeUndefined();
      await publisher.stop(1000);
    }
  });

  it("delivers over TLS verified against the configured CA", async () => {
    const sub = await Subscriber.open(broker.url, `fieldrelay/${DEVICE}/+`);
    cleanups.push(() => sub.close());
    const { publisher, queue } = harness({ url: broker.tlsUrl, tls: { ca: certs.ca } });
    queue.capture(reading());
    publisher.start();
    await until(() => sub.seqs().length === 1, "reading over TLS");
    expect(publisher.stats().lastError).toBeUndefined();
  });

  it("delivers with mutual TLS (client certificate), SNI and ALPN set", async () => {
    const sub = await Subscriber.open(mtlsBroker.url, `fieldrelay/${DEVICE}/+`);
    cleanups.push(() => sub.close());
    const { publisher, queue } = harness({
      url: mtlsBroker.tlsUrl,
      tls: {
        ca: certs.ca,
        cert: certs.clientCert,
        key: certs.clientKey,
        servername: "localhost",
        alpn: ["mqtt"],
      },
    });
    queue.capture(reading());
    publisher.start();
    await until(() => sub.seqs().length === 1, "reading over mTLS");
  });

  it("is refused by a broker requiring a client certificate when it has none", async () => {
    const { publisher, scheduler } = harness({ url: mtlsBroker.tlsUrl, tls: { ca: certs.ca } });
    publisher.start();
    await until(() => scheduler.pending === 1, "failure");
    expect(publisher.stats().connected).toBe(false);
    expect(publisher.stats().lastError).toBeDefined();
  });

  it("with the wrong CA keeps queuing, backs off and logs the failure once", async () => {
    const { publisher, queue, scheduler, logs } = harness({ url: broker.tlsUrl, tls: { ca: certs.otherCa } });
    queue.capture(reading());
    publisher.start();
    for (let i = 0; i < 4; i++) {
      await until(() => scheduler.pending === 1, `attempt ${i}`);
      scheduler.runNext();
    }
    queue.capture(reading());
    expect(scheduler.requestedMs).toEqual([50, 100, 200, 400]);
    expect(publisher.stats().lastError).toMatch(/certificate/i);
    expect(queue.size).toBe(2);
    const warnings = logs.filter((l) => l.level === "warn");
    expect(warnings).toHaveLength(1);
  });

  it("with tls.insecure connects without verification and warns at every connect", async () => {
    const { publisher, queue, scheduler, logs, clients } = harness({
      url: broker.tlsUrl,
      tls: { insecure: true },
    });
    publisher.start();
    await until(() => publisher.stats().connected, "connected");
    clients[0]!.stream.destroy();
    await until(() => scheduler.pending === 1, "reconnect scheduled");
    scheduler.runNext();
    await until(() => publisher.stats().connected, "reconnected");
    queue.capture(reading());
    await until(() => queue.size === 0, "delivered");
    expect(logs.filter((l) => String(l.msg).includes("verification is OFF"))).toHaveLength(2);
  });
});
