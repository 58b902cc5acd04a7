import { EventEmitter } from "node:events";
import type { IClientOptions, IClientPublishOptions, MqttClient } from "mqtt";
import { describe, expect, it } from "vitest";
import { type Config, configSchema } from "../../src/config/index.ts";
import { createLogger } from "../../src/log/index.ts";
import { createPublisher, ManualScheduler, type PublisherOptions } from "../../src/publish/index.ts";
import { MemoryQueue, reading } from "../support/memory-queue.ts";
import { freePort } from "../support/ports.ts";

function mqttConfig(overrides: Record<string, unknown>): Config["mqtt"] {
  return configSchema.parse({ device: { id: "pi-7" }, mqtt: overrides }).mqtt;
}

function captureLog() {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({
    level: "debug",
    destination: { write: (s: string) => lines.push(JSON.parse(s)) },
  });
  return { log, lines };
}

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

type FakeOpts = IClientPublishOptions & { __acked?: boolean };

const flush = () => new Promise((r) => setImmediate(r));

/**
 * FakeClient stands in for an mqtt.js client: it records publishes, and the test decides when
 * CONNACK, PUBACKs and socket loss happen.
 */
class FakeClient extends EventEmitter {
  outgoing: Record<number, unknown> = {};
  published: Array<{ topic: string; payload: string; opts: FakeOpts; cb: (e?: Error) => void }> = [];
  subscribed: unknown[] = [];
  ended: Array<boolean> = [];
  constructor(
    readonly url: string,
    readonly options: IClientOptions,
  ) {
    super();
  }
  publish(topic: string, payload: string | Buffer, opts: FakeOpts, cb: (e?: Error) => void) {
    this.published.push({ topic, payload: String(payload), opts, cb });
    return this;
  }
  subscribe(map: unknown, ...rest: unknown[]) {
    this.subscribed.push(map);
    void rest;
    return this;
  }
  unsubscribe() {
    return this;
  }
  removeOutgoingMessage() {
    return this;
  }
  end(force?: boolean, _opts?: unknown, cb?: () => void) {
    this.ended.push(Boolean(force));
    for (const p of this.published.splice(0)) if (!p.opts?.__acked) p.cb(new Error("Connection closed"));
    cb?.();
    return this;
  }
  /** Readings published (not the status topic), in order. */
  readings() {
    return this.published.filter((p) => !p.topic.endsWith("/status"));
  }
  ack(n = Number.POSITIVE_INFINITY) {
    let done = 0;
    for (const p of this.published) {
      if (done >= n) break;
      if (p.opts.__acked) continue;
      p.opts.__acked = true;
      p.cb();
      done++;
    }
  }
}

function fakePublisher(mqtt: Record<string, unknown>, extra: Partial<PublisherOptions> = {}) {
  const scheduler = new ManualScheduler();
  const queue = new MemoryQueue();
  const clients: FakeClient[] = [];
  const { log, lines } = captureLog();
  const publisher = createPublisher({
    mqtt: mqttConfig({ min_backoff_s: 1, max_backoff_s: 8, stable_after_s: 30, ...mqtt }),
    deviceId: "pi-7",
    queue,
    stamp: (r) => ({ wallMs: r.wallMs, tq: r.tq, errMs: 0 }),
    log,
    random: () => 0.5,
    monoMs: scheduler.monoMs,
    scheduler,
    connect: (url, options) => {
      const c = new FakeClient(url, options);
      clients.push(c);
      return c as unknown as MqttClient;
    },
    ...extra,
  });
  const last = () => clients[clients.length - 1]!;
  return { publisher, queue, scheduler, clients, last, lines };
}

describe("Publisher reconnection", () => {
  it("backs off on a refused connection with a growing, capped schedule, without sleeping", async () => {
    const port = await freePort(); // nothing listens there
    const scheduler = new ManualScheduler();
    const { log, lines } = captureLog();
    const publisher = createPublisher({
      mqtt: mqttConfig({ url: `mqtt://127.0.0.1:${port}`, min_backoff_s: 1, max_backoff_s: 8 }),
      deviceId: "pi-7",
      queue: new MemoryQueue(),
      stamp: (r) => ({ wallMs: r.wallMs, tq: r.tq, errMs: 0 }),
      log,
      random: () => 0.5,
      monoMs: scheduler.monoMs,
      scheduler,
    });
    publisher.start();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      await until(() => scheduler.pending === 1, `reconnect timer ${i}`);
      delays.push(scheduler.pendingDelaysMs()[0]!);
      expect(publisher.stats().backoffS).toBe(delays[i]! / 1000);
      scheduler.runNext();
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 4000, 4000]);
    const stats = publisher.stats();
    expect(stats.connected).toBe(false);
    expect(stats.reconnects).toBe(6);
    expect(stats.lastError).toMatch(/ECONNREFUSED/);
    // One warning for the outage, not one per attempt.
    const warnings = lines.filter((l) => l.level === "warn");
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]!.err)).toMatch(/ECONNREFUSED/);
    await publisher.stop(100);
    expect(scheduler.pending).toBe(0);
  });

  it("uses reconnectPeriod 0, clean sessions, no QoS 0 offline queue and a retained 'offline' will", () => {
    const { publisher, last } = fakePublisher({ username: "u", password: "p" });
    publisher.start();
    const o = last().options;
    expect(o.reconnectPeriod).toBe(0);
    expect(o.clean).toBe(true);
    expect(o.queueQoSZero).toBe(false);
    expect(o.resubscribe).toBe(false);
    expect(o.clientId).toBe("fieldrelay-pi-7");
    expect(o.username).toBe("u");
    expect(o.will).toMatchObject({ topic: "fieldrelay/pi-7/status", qos: 1, retain: true });
    expect(String(o.will!.payload)).toBe("offline");
    expect(o.rejectUnauthorized).toBe(true);
  });

  it("resets the backoff after a connection stayed up stable_after_s, not before", async () => {
    const { publisher, scheduler, last } = fakePublisher({});
    publisher.start();
    const fail = () => {
      last().emit("error", Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }));
      last().emit("close");
    };
    fail(); // attempt 0 → 500 ms
    scheduler.runNext();
    fail(); // attempt 1 → 1000 ms
    scheduler.runNext();
    last().emit("connect");
    scheduler.advance(10_000); // up 10 s < 30 s: flapping, keep growing
    last().emit("close");
    expect(scheduler.pendingDelaysMs()).toEqual([2000]);
    scheduler.runNext();
    last().emit("connect");
    scheduler.advance(30_000); // stable
    last().emit("close");
    expect(scheduler.pendingDelaysMs()).toEqual([500]);
    expect(publisher.stats().lastError).toBe("connection to broker lost");
    await publisher.stop(0);
  });

  it("logs an insecure-TLS warning at every connect attempt", () => {
    const { publisher, scheduler, last, lines } = fakePublisher({
      url: "mqtts://broker:8883",
      tls: { insecure: true },
    });
    publisher.start();
    last().emit("close");
    scheduler.runNext();
    last().emit("close");
    scheduler.runNext();
    expect(lines.filter((l) => String(l.msg).includes("verification is OFF"))).toHaveLength(3);
    expect(last().options.rejectUnauthorized).toBe(false);
  });
});

describe("Publisher drain", () => {
  it("publishes birth first, then readings priority DESC, seq ASC, at most max_inflight unacked", async () => {
    const { publisher, queue, last } = fakePublisher({ max_inflight: 3 });
    for (const p of [1, 5, 9, 5, 9]) queue.capture(reading({ priority: p }));
    publisher.start();
    last().emit("connect");
    await flush();
    const c = last();
    expect(c.published[0]).toMatchObject({ topic: "fieldrelay/pi-7/status", payload: "online" });
    expect(c.published[0]!.opts).toMatchObject({ qos: 1, retain: true });
    expect(c.readings().map((p) => JSON.parse(p.payload).seq)).toEqual([3, 5, 2]);
    expect(publisher.stats().inflight).toBe(3);
    c.ack();
    await flush();
    expect(c.readings().map((p) => JSON.parse(p.payload).seq)).toEqual([3, 5, 2, 4, 1]);
    c.ack();
    await flush();
    expect(queue.size).toBe(0);
    expect(publisher.stats()).toMatchObject({
      published: 5,
      delivered: 5,
      resent: 0,
      inflight: 0,
      connected: true,
    });
    // Acks are batched: one Queue.ack per turn, not one per PUBACK.
    expect(queue.ackLog).toEqual([3, 5, 2, 4, 1]);
  });

  it("wakes on queue.onAvailable and sends each reading's own QoS", async () => {
    const { publisher, queue, last } = fakePublisher({ protocol_version: 4 });
    publisher.start();
    last().emit("connect");
    await flush();
    queue.capture(reading({ qos: 0, stream: "door" }));
    queue.capture(reading({ qos: 2 }));
    await flush();
    const r = last().readings();
    expect(r.map((p) => [p.topic, p.opts.qos])).toEqual([
      ["fieldrelay/pi-7/door", 0],
      ["fieldrelay/pi-7/env", 2],
    ]);
    expect(r[0]!.opts.properties).toBeUndefined(); // MQTT 3.1.1: no properties
  });

  it("resends unacked readings first after a reconnect and counts them as resent", async () => {
    const { publisher, queue, scheduler, last } = fakePublisher({ max_inflight: 2 });
    for (let i = 0; i < 4; i++) queue.capture(reading());
    publisher.start();
    last().emit("connect");
    await flush();
    last().ack(2); // birth and seq 1 acked
    await flush();
    expect(
      last()
        .readings()
        .map((p) => JSON.parse(p.payload).seq),
    ).toEqual([1, 2, 3]);
    last().emit("close"); // 2 and 3 unacked
    queue.capture(reading({ priority: 10 })); // seq 5, higher priority than the resends
    scheduler.runNext();
    last().emit("connect");
    await flush();
    expect(
      last()
        .readings()
        .map((p) => JSON.parse(p.payload).seq),
    ).toEqual([2]); // unacked at a lost connection: suspects, sent one at a time (poison-pill search)
    last().ack();
    await flush();
    expect(
      last()
        .readings()
        .map((p) => JSON.parse(p.payload).seq),
    ).toEqual([2, 3]);
    last().ack();
    await flush();
    expect(
      last()
        .readings()
        .map((p) => JSON.parse(p.payload).seq),
    ).toEqual([2, 3, 5, 4]);
    last().ack();
    await flush();
    expect(queue.size).toBe(0);
    expect(publisher.stats()).toMatchObject({ resent: 2, published: 7, delivered: 5, reconnects: 1 });
  });

  it("ignores late callbacks of a dead session: the rows stay inflight for the next one", async () => {
    const { publisher, queue, scheduler, last, clients } = fakePublisher({});
    queue.capture(reading());
    publisher.start();
    last().emit("connect");
    await flush();
    const old = clients[0]!;
    old.emit("close");
    await flush();
    expect(queue.stats().inflight).toBe(1);
    expect(queue.size).toBe(1);
    scheduler.runNext();
    expect(clients).toHaveLength(2);
    expect(old.ended.length).toBeGreaterThan(0);
  });

  it("limits the rate to max_rate with the token bucket and the injected timer", async () => {
    const { publisher, queue, scheduler, last } = fakePublisher({ max_rate: 2, max_inflight: 100 });
    for (let i = 0; i < 7; i++) queue.capture(reading({ qos: 0 }));
    publisher.start();
    last().emit("connect");
    await flush();
    last().ack();
    await flush();
    expect(last().readings()).toHaveLength(2); // burst of one second's worth
    scheduler.advance(500);
    last().ack();
    await flush();
    expect(last().readings()).toHaveLength(3);
    scheduler.advance(1000);
    last().ack();
    await flush();
    expect(last().readings()).toHaveLength(5);
  });

  it("adds the seq user property and message expiry under MQTT 5", async () => {
    const { publisher, queue, last } = fakePublisher({ protocol_version: 5, message_expiry_s: 600 });
    queue.capture(reading());
    publisher.start();
    last().emit("connect");
    await flush();
    expect(last().options.protocolVersion).toBe(5);
    expect(last().readings()[0]!.opts.properties).toEqual({
      userProperties: { seq: "1" },
      messageExpiryInterval: 600,
    });
  });
});

describe("Publisher commands transport", () => {
  it("rejects send() when not connected or stopping, and resolves when written", async () => {
    const { publisher, last } = fakePublisher({});
    publisher.start();
    await expect(publisher.send("x/y", "1")).rejects.toThrow(/not connected/);
    last().emit("connect");
    const sent = publisher.send("x/y", "hello", { qos: 1, retain: true });
    const p = last().published.find((m) => m.topic === "x/y")!;
    expect(p.opts).toMatchObject({ qos: 1, retain: true });
    p.cb();
    await expect(sent).resolves.toBeUndefined();
    const stopping = publisher.stop(0);
    await expect(publisher.send("x/y", "1")).rejects.toThrow(/stopping/);
    last().ack();
    await stopping;
  });

  it("subscribes again after every reconnect and dispatches by filter", async () => {
    const { publisher, scheduler, last } = fakePublisher({});
    const got: string[] = [];
    publisher.subscribe("fieldrelay/pi-7/cmd/+", 1, (topic, payload) => got.push(`${topic}=${payload}`));
    publisher.start();
    last().emit("connect");
    expect(last().subscribed).toEqual([{ "fieldrelay/pi-7/cmd/+": { qos: 1 } }]);
    last().emit("message", "fieldrelay/pi-7/cmd/ping", Buffer.from("1"), {});
    last().emit("message", "fieldrelay/other/cmd/ping", Buffer.from("2"), {});
    last().emit("close");
    scheduler.runNext();
    last().emit("connect");
    expect(last().subscribed).toEqual([{ "fieldrelay/pi-7/cmd/+": { qos: 1 } }]);
    expect(got).toEqual(["fieldrelay/pi-7/cmd/ping=1"]);
  });
});

describe("Publisher stop", () => {
  it("waits for inflight acks, publishes nothing more, then retained 'offline' and a clean DISCONNECT", async () => {
    const { publisher, queue, last } = fakePublisher({ max_inflight: 2 });
    for (let i = 0; i < 4; i++) queue.capture(reading());
    publisher.start();
    last().emit("connect");
    await flush();
    let stopped = false;
    const stopping = publisher.stop(60_000).then((r) => {
      stopped = true;
      return r;
    });
    await flush();
    expect(stopped).toBe(false);
    queue.capture(reading());
    const c = last();
    c.ack(3); // birth + seqs 1, 2
    await flush();
    // No further readings after stop() began; then "offline" retained.
    expect(
      c.readings().map((p) => (p.payload === "offline" ? "offline" : JSON.parse(p.payload).seq)),
    ).toEqual([1, 2]);
    const offline = c.published.find((p) => p.payload === "offline")!;
    expect(offline.opts).toMatchObject({ qos: 1, retain: true });
    offline.cb();
    expect(await stopping).toEqual({ unacked: 0 });
    expect(c.ended).toContain(false); // clean DISCONNECT: the broker drops the will
    expect(queue.seqs()).toEqual([3, 4, 5]);
  });

  it("gives up waiting at the timeout and leaves the unacked rows inflight for the next start", async () => {
    const { publisher, queue, scheduler, last } = fakePublisher({ max_inflight: 2 }, { offlineGraceMs: 100 });
    for (let i = 0; i < 3; i++) queue.capture(reading());
    publisher.start();
    last().emit("connect");
    await flush();
    const stopping = publisher.stop(1000);
    await flush();
    scheduler.advance(1000);
    await flush();
    scheduler.advance(100);
    await flush();
    scheduler.advance(2000);
    expect(await stopping).toEqual({ unacked: 2 });
    expect(queue.stats().inflight).toBe(2);
  });
});

/** What mqtt.js hands the publish callback for a PUBACK reason code ≥ 0x80 (ErrorWithReasonCode). */
const refusedWith = (code: number) => Object.assign(new Error(`Publish error: ${code}`), { code });

describe("Publisher refusals (#12): nothing the broker refuses blocks the queue", () => {
  const seqsOf = (c: FakeClient) => c.readings().map((p) => JSON.parse(p.payload).seq as number);

  it("moves a reading refused with a permanent code (0x87) to dead letters and sends the next", async () => {
    const { publisher, queue, last, lines } = fakePublisher({ max_inflight: 1, protocol_version: 5 });
    for (let i = 0; i < 3; i++) queue.capture(reading());
    publisher.start();
    last().emit("connect");
    await flush();
    expect(seqsOf(last())).toEqual([1]);
    last().readings()[0]!.opts.__acked = true;
    last().readings()[0]!.cb(refusedWith(0x87));
    await flush();
    expect(queue.deadLetters).toEqual([
      { seq: 1, reason: "broker refused the PUBLISH: 0x87 Not authorized" },
    ]);
    expect(seqsOf(last())).toEqual([1, 2]);
    last().ack();
    await flush();
    last().ack();
    await flush();
    expect(queue.size).toBe(0);
    expect(queue.ackLog).toEqual([2, 3]);
    expect(
      lines.filter((l) => l.msg === "message refused by the broker: moved to dead letters"),
    ).toHaveLength(1);
  });

  it("retries a reading refused with a transient code (0x97 quota exceeded) after a backoff", async () => {
    const { publisher, queue, scheduler, last } = fakePublisher({ max_inflight: 1, protocol_version: 5 });
    queue.capture(reading());
    queue.capture(reading());
    publisher.start();
    last().emit("connect");
    await flush();
    last().readings()[0]!.opts.__acked = true;
    last().readings()[0]!.cb(refusedWith(0x97));
    await flush();
    expect(queue.deadLetters).toEqual([]);
    expect(seqsOf(last())).toEqual([1]); // it keeps its slot while it waits
    scheduler.runNext();
    await flush();
    expect(seqsOf(last())).toEqual([1, 1]);
    last().ack();
    await flush();
    last().ack();
    await flush();
    expect(queue.ackLog).toEqual([1, 2]);
  });

  it("finds a message that makes the broker drop the connection, one at a time, and dead-letters it", async () => {
    const { publisher, queue, scheduler, last, clients } = fakePublisher({ max_inflight: 4 });
    for (let i = 0; i < 3; i++) queue.capture(reading());
    publisher.start();
    last().emit("connect");
    await flush();
    expect(seqsOf(last())).toEqual([1, 2, 3]);
    // Seq 1 is the poison: the broker drops every connection it arrives on.
    for (let strike = 0; strike <= 3; strike++) {
      last().emit("close");
      scheduler.runNext();
      last().emit("connect");
      await flush();
      if (strike < 3) expect(seqsOf(last())).toEqual([1]);
    }
    expect(queue.deadLetters.map((d) => d.seq)).toEqual([1]);
    expect(queue.deadLetters[0]?.reason).toMatch(/dropped the connection 3 times/);
    expect(seqsOf(last())).toEqual([2]);
    last().ack();
    await flush();
    last().ack();
    await flush();
    expect(queue.ackLog).toEqual([2, 3]);
    expect(clients.length).toBe(5);
  });

  it("does not suspect an innocent message of one broker restart", async () => {
    const { publisher, queue, scheduler, last } = fakePublisher({ max_inflight: 4 });
    queue.capture(reading());
    publisher.start();
    last().emit("connect");
    await flush();
    last().emit("close");
    scheduler.runNext();
    last().emit("connect");
    await flush();
    last().ack();
    await flush();
    expect(queue.deadLetters).toEqual([]);
    expect(queue.ackLog).toEqual([1]);
  });
});
