/**
 * Commands against a real mosquitto. The device side uses a tiny transport on mqtt.js written
 * here (the real publisher plugs into the same CommandTransport later); like the publisher, it
 * re-subscribes on every connect, so a broker restart does not lose the command subscription.
 */
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CommandPacket, type CommandTransport, startCommands } from "../../src/commands/index.ts";
import { silentLogger } from "../../src/log/index.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { MOSQUITTO, missing } from "../support/tools.ts";

const skip = missing(MOSQUITTO);

type Handler = (topic: string, payload: Buffer, packet: CommandPacket) => void;

function matches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  if (f.at(-1) === "#")
    return t.length >= f.length - 1 && f.slice(0, -1).every((p, i) => p === "+" || p === t[i]);
  return f.length === t.length && f.every((p, i) => p === "+" || p === t[i]);
}

function testTransport(client: MqttClient): CommandTransport {
  const subs: Array<{ filter: string; qos: 0 | 1 | 2; handler: Handler }> = [];
  client.on("connect", () => {
    for (const s of subs) client.subscribe(s.filter, { qos: s.qos });
  });
  client.on("message", (topic, payload, packet) => {
    for (const s of subs) if (matches(s.filter, topic)) s.handler(topic, payload, packet as CommandPacket);
  });
  return {
    async subscribe(filter, qos, handler) {
      subs.push({ filter, qos, handler });
      if (client.connected) await client.subscribeAsync(filter, { qos });
    },
    async send(topic, payload, { qos, retain, properties }) {
      await client.publishAsync(topic, payload, {
        qos,
        retain: retain ?? false,
        ...(properties ? { properties } : {}),
      });
    },
  };
}

const connectClient = (url: string, clientId: string) =>
  mqtt.connectAsync(url, {
    clientId,
    protocolVersion: 5,
    reconnectPeriod: 100,
    connectTimeout: 2000,
    resubscribe: false,
  });

describe.skipIf(skip)("remote commands over MQTT", () => {
  let broker: MosquittoBroker;
  let device: MqttClient;
  let operator: MqttClient;
  const replies: Array<{ topic: string; body: Record<string, unknown>; correlation?: string }> = [];

  beforeAll(async () => {
    broker = await MosquittoBroker.start();
    device = await connectClient(broker.url, "pi-1");
    operator = await connectClient(broker.url, "operator");
    operator.on("message", (topic, payload, packet) => {
      const correlation = packet.properties?.correlationData?.toString();
      replies.push({ topic, body: JSON.parse(payload.toString()), ...(correlation ? { correlation } : {}) });
    });
    operator.on("connect", () => {
      operator.subscribe(["fr/pi-1/cmd/+/reply", "ops/inbox/#"], { qos: 1 });
    });
    await operator.subscribeAsync(["fr/pi-1/cmd/+/reply", "ops/inbox/#"], { qos: 1 });
    await startCommands({
      transport: testTransport(device),
      prefix: "fr",
      deviceId: "pi-1",
      maxPayloadBytes: 256,
      log: silentLogger(),
      ctx: {
        health: () => ({ status: "degraded", checks: { broker: { status: "ok", reason: "connected" } } }),
        sample: async (sensor) => ({ sensor, values: { temperature_c: 20.25 } }),
        flush: async () => ({ committed: 0 }),
      },
    });
  });

  afterAll(async () => {
    await device?.endAsync(true);
    await operator?.endAsync(true);
    await broker?.close();
  });

  async function reply(match: (r: (typeof replies)[number]) => boolean, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = replies.find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching reply; got ${JSON.stringify(replies)}`);
      await Bun.sleep(10);
    }
  }

  it("answers ping on cmd/ping/reply, echoing the id", async () => {
    await operator.publishAsync("fr/pi-1/cmd/ping", JSON.stringify({ id: "p-1" }), { qos: 1 });
    const r = await reply((x) => x.body.id === "p-1");
    expect(r).toEqual({
      topic: "fr/pi-1/cmd/ping/reply",
      body: { id: "p-1", command: "ping", ok: true, result: { pong: true } },
    });
  });

  it("answers status and sample with their results", async () => {
    await operator.publishAsync("fr/pi-1/cmd/status", JSON.stringify({ id: "st" }), { qos: 1 });
    await operator.publishAsync("fr/pi-1/cmd/sample", JSON.stringify({ id: "sa", sensor: "bme" }), {
      qos: 1,
    });
    expect((await reply((x) => x.body.id === "st")).body).toMatchObject({
      ok: true,
      result: { status: "degraded" },
    });
    expect((await reply((x) => x.body.id === "sa")).body).toMatchObject({
      ok: true,
      result: { sensor: "bme" },
    });
  });

  it("answers malformed and oversized payloads with error replies and keeps serving", async () => {
    await operator.publishAsync("fr/pi-1/cmd/flush", "{not json", { qos: 1 });
    await operator.publishAsync("fr/pi-1/cmd/sample", Buffer.alloc(1000, 0x41), { qos: 1 });
    await operator.publishAsync("fr/pi-1/cmd/ping", JSON.stringify({ id: "after-bad" }), { qos: 1 });
    const malformed = await reply((x) => x.topic === "fr/pi-1/cmd/flush/reply");
    expect(malformed.body).toMatchObject({ ok: false, error: { code: "malformed_json" } });
    const big = await reply((x) => x.topic === "fr/pi-1/cmd/sample/reply" && x.body.ok === false);
    expect(big.body).toMatchObject({
      error: { code: "payload_too_large", message: expect.stringContaining("1000 bytes") },
    });
    expect((await reply((x) => x.body.id === "after-bad")).body.ok).toBe(true);
  });

  it("uses the MQTT 5 response topic and correlation data when the request has them", async () => {
    await operator.publishAsync("fr/pi-1/cmd/ping", "", {
      qos: 1,
      properties: { responseTopic: "ops/inbox/42", correlationData: Buffer.from("corr-42") },
    });
    const r = await reply((x) => x.topic === "ops/inbox/42");
    expect(r).toEqual({
      topic: "ops/inbox/42",
      body: { command: "ping", ok: true, result: { pong: true } },
      correlation: "corr-42",
    });
  });

  it("still answers after the broker restarts (the transport re-subscribes)", async () => {
    await broker.restart();
    const deadline = Date.now() + 10_000;
    while (!(device.connected && operator.connected)) {
      if (Date.now() > deadline) throw new Error("clients did not reconnect");
      await Bun.sleep(20);
    }
    // The device's re-subscription may land a moment after CONNACK: ask until answered.
    for (let i = 0; ; i++) {
      await operator.publishAsync("fr/pi-1/cmd/ping", JSON.stringify({ id: `again-${i}` }), { qos: 1 });
      try {
        const r = await reply((x) => String(x.body.id).startsWith("again-"), 300);
        expect(r.body).toMatchObject({ command: "ping", ok: true });
        break;
      } catch (error) {
        if (i >= 20) throw error;
      }
    }
  });

  it("runs a retained command once, not again when the broker replays it on (re)subscribe (#12)", async () => {
    await operator.publishAsync("fr/pi-1/cmd/ping", JSON.stringify({ id: "ret-1" }), {
      qos: 1,
      retain: true,
    });
    await reply((x) => x.body.id === "ret-1");
    // What a reconnect does: subscribe again, and mosquitto sends the retained request (retain flag set).
    await device.unsubscribeAsync("fr/pi-1/cmd/+");
    await device.subscribeAsync("fr/pi-1/cmd/+", { qos: 1 });
    await operator.publishAsync("fr/pi-1/cmd/ping", JSON.stringify({ id: "after" }), { qos: 1 });
    await reply((x) => x.body.id === "after");
    expect(replies.filter((x) => x.body.id === "ret-1")).toHaveLength(1);
    await operator.publishAsync("fr/pi-1/cmd/ping", "", { qos: 1, retain: true }); // clear it
  });
});
