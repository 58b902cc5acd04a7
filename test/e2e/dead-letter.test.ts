/**
 * Issue #12, items 1 and 2: one message the broker will not take never stops delivery. Real
 * mosquitto, the compiled x64 binary. A refused PUBACK (ACL, MQTT 5 reason 0x87) and a message
 * that makes the broker drop the connection both end in the dead-letter table, and every other
 * reading is delivered.
 */
import { Database } from "bun:sqlite";
import mqtt from "mqtt";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openQueueReader } from "../../src/queue/index.ts";
import {
  binaryMissing,
  type Flavor,
  type RunningFieldrelay,
  run,
  spawn,
  Workspace,
} from "../support/fieldrelay.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { freePort } from "../support/ports.ts";
import { MOSQUITTO, missing } from "../support/tools.ts";

const flavor: Flavor = "x64";
const skip = binaryMissing(flavor) ?? missing(MOSQUITTO);

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

function post(port: number, body: unknown): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/v1/readings`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function subscribe(url: string, filter: string) {
  const received: Array<{ topic: string; seq: number; stream: string }> = [];
  const client = await mqtt.connectAsync(url, { clientId: `dl-sub-${Math.random()}`, reconnectPeriod: 0 });
  await client.subscribeAsync(filter, { qos: 1 });
  client.on("message", (topic, payload) => {
    if (topic.endsWith("/status") || topic.includes("/clock/")) return; // the device's own topics
    const m = JSON.parse(payload.toString()) as { seq: number; stream: string };
    received.push({ topic, seq: m.seq, stream: m.stream });
  });
  return { received, close: () => client.endAsync() };
}

describe.skipIf(skip)("dead letters: one refused message never stops delivery", () => {
  const workspaces: Workspace[] = [];
  const brokers: MosquittoBroker[] = [];
  let proc: RunningFieldrelay | undefined;
  afterEach(async () => {
    if (proc && proc.proc.exitCode === null) {
      proc.kill("SIGKILL");
      await proc.exited;
    }
    proc = undefined;
  });
  afterAll(async () => {
    for (const b of brokers) await b.close();
    for (const w of workspaces) w.cleanup();
  });

  it("moves readings refused by a broker ACL (PUBACK 0x87) to dead letters and delivers the rest", async () => {
    const ws = new Workspace("fr-dl-acl-");
    workspaces.push(ws);
    const broker = await MosquittoBroker.start({
      acl: ["topic read #", "topic write fieldrelay/pi-acl/ok", "topic write fieldrelay/pi-acl/status"],
    });
    brokers.push(broker);
    const ingestPort = await freePort();
    const config = ws.writeConfig({
      device: { id: "pi-acl" },
      mqtt: { url: broker.url, protocol_version: 5, max_inflight: 4, min_backoff_s: 0.2, max_backoff_s: 1 },
      queue: { path: ws.queuePath, commit_interval_ms: 50 },
      ingest: { listen: `127.0.0.1:${ingestPort}` },
      health: { listen: "" },
      rtc: { mode: "none" },
    });
    const sub = await subscribe(broker.url, "fieldrelay/pi-acl/#");
    proc = spawn(flavor, ["run", "-c", config]);
    await proc.waitForLog((l) => l.msg === "fieldrelay ready");

    for (let i = 0; i < 4; i++)
      expect((await post(ingestPort, { stream: "denied", values: { i } })).status).toBe(201);
    for (let i = 0; i < 20; i++)
      expect((await post(ingestPort, { stream: "ok", values: { i } })).status).toBe(201);

    await until(
      "20 allowed readings delivered",
      () => sub.received.filter((r) => r.stream === "ok").length >= 20,
    );
    await proc.waitForLog((l) => l.msg === "message refused by the broker: moved to dead letters");
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    await sub.close();

    const list = await run(flavor, ["queue", "dead-letter", "list", "--json", "--db", ws.queuePath]);
    expect(list.code, list.stderr).toBe(0);
    const dead = list.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { seq: number; stream: string; reason: string });
    expect(dead.map((d) => d.stream)).toEqual(["denied", "denied", "denied", "denied"]);
    expect(dead[0]?.reason).toMatch(/0x87/);
    const reader = openQueueReader(ws.queuePath);
    expect(reader.stats().rows).toBe(0);
    reader.close();
    expect(sub.received.some((r) => r.stream === "denied")).toBe(false);

    // export carries the values; requeue puts them back under their own seqs.
    // requeue and drop take the queue's writer lock: refused while a run holds it.
    const holder = spawn(flavor, ["run", "-c", config]);
    await holder.waitForLog((l) => l.msg === "fieldrelay ready");
    const busy = await run(flavor, ["queue", "dead-letter", "requeue", "--all", "--db", ws.queuePath]);
    expect(busy.code).toBe(73);
    expect(busy.stderr).toMatch(/in use by another fieldrelay/);
    holder.kill("SIGTERM");
    expect(await holder.exited).toBe(0);

    const exported = await run(flavor, ["queue", "dead-letter", "export", "--db", ws.queuePath]);
    expect(
      exported.stdout
        .trim()
        .split("\n")
        .map((l) => (JSON.parse(l) as { values: { i: number } }).values.i),
    ).toEqual([0, 1, 2, 3]);
    const bad = await run(flavor, ["queue", "dead-letter", "requeue", "--db", ws.queuePath]);
    expect(bad.code).toBe(64);
    const requeued = await run(flavor, ["queue", "dead-letter", "requeue", "--all", "--db", ws.queuePath]);
    expect(requeued.code, requeued.stderr).toBe(0);
    expect(requeued.stdout).toMatch(/requeued 4 reading/);
    const after = openQueueReader(ws.queuePath);
    expect([...after.export()].map((r) => r.seq)).toEqual(dead.map((d) => d.seq));
    after.close();
    const empty = await run(flavor, ["queue", "dead-letter", "list", "--db", ws.queuePath]);
    expect(empty.stdout.trim()).toBe("no dead letters");
    const none = await run(flavor, [
      "queue",
      "dead-letter",
      "drop",
      String(dead[0]!.seq),
      "--db",
      ws.queuePath,
    ]);
    expect(none.code).toBe(65); // requeued: no longer a dead letter
  });

  it("refuses at ingest a stream name MQTT cannot carry (400), so it never reaches the queue", async () => {
    const ws = new Workspace("fr-dl-name-");
    workspaces.push(ws);
    const broker = await MosquittoBroker.start();
    brokers.push(broker);
    const ingestPort = await freePort();
    const config = ws.writeConfig({
      device: { id: "pi-name" },
      mqtt: { url: broker.url, min_backoff_s: 0.2, max_backoff_s: 1 },
      queue: { path: ws.queuePath, commit_interval_ms: 50 },
      ingest: { listen: `127.0.0.1:${ingestPort}` },
      health: { listen: "" },
      rtc: { mode: "none" },
    });
    const sub = await subscribe(broker.url, "fieldrelay/pi-name/#");
    proc = spawn(flavor, ["run", "-c", config]);
    await proc.waitForLog((l) => l.msg === "fieldrelay ready");
    for (const bad of ["x\u0085", "x\uffff", "x\ufdd0", "status", "clock", "cmd"]) {
      const res = await post(ingestPort, { stream: bad, values: { v: 1 } });
      expect(res.status, `stream ${escape(bad)}`).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(/stream/);
    }
    for (let i = 0; i < 10; i++)
      expect((await post(ingestPort, { stream: "good", values: { i }, priority: 10 })).status).toBe(201);
    await until("10 good readings delivered", () => sub.received.length >= 10);
    await sub.close();
  });

  it("dead-letters a queued reading that makes the broker drop the connection, and delivers the rest", async () => {
    const ws = new Workspace("fr-dl-drop-");
    workspaces.push(ws);
    const broker = await MosquittoBroker.start();
    brokers.push(broker);
    const ingestPort = await freePort();
    const cfg = (url: string) =>
      ws.writeConfig({
        device: { id: "pi-drop" },
        mqtt: { url, min_backoff_s: 0.1, max_backoff_s: 1, max_inflight: 4 },
        queue: { path: ws.queuePath, commit_interval_ms: 50 },
        ingest: { listen: `127.0.0.1:${ingestPort}` },
        health: { listen: "" },
        rtc: { mode: "none" },
      });
    // 1. Queue 11 readings while no broker listens; the first one's stream is then made
    //    unpublishable on disk (a queue written by an older fieldrelay that did not check names).
    proc = spawn(flavor, ["run", "-c", cfg(`mqtt://127.0.0.1:${await freePort()}`)]);
    await proc.waitForLog((l) => l.msg === "fieldrelay ready");
    expect((await post(ingestPort, { stream: "poison", values: { v: 0 }, priority: 1 })).status).toBe(201);
    for (let i = 0; i < 10; i++)
      expect((await post(ingestPort, { stream: "good", values: { i }, priority: 10 })).status).toBe(201);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    const db = new Database(ws.queuePath);
    db.query("UPDATE readings SET stream = ?, inflight = 1 WHERE stream = 'poison'").run("poison\u0085");
    db.close();

    // 2. With the broker up, the poison reading is resent first, mosquitto drops the connection
    //    ("malformed packet") each time, and fieldrelay moves it aside.
    const sub = await subscribe(broker.url, "fieldrelay/pi-drop/#");
    proc = spawn(flavor, ["run", "-c", cfg(broker.url)]);
    await proc.waitForLog((l) => l.msg === "fieldrelay ready");
    await until("10 good readings delivered", () => sub.received.length >= 10, 60_000);
    await proc.waitForLog((l) => l.msg === "message refused by the broker: moved to dead letters");
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    await sub.close();
    const list = await run(flavor, ["queue", "dead-letter", "list", "--json", "--db", ws.queuePath]);
    expect(list.code, list.stderr).toBe(0);
    const dead = JSON.parse(list.stdout.trim()) as { stream: string; reason: string };
    expect(dead.stream).toBe("poison\u0085");
    expect(dead.reason).toMatch(/dropped the connection/);
    const dropped = await run(flavor, ["queue", "dead-letter", "drop", "--all", "--db", ws.queuePath]);
    expect(dropped.stdout).toMatch(/dropped 1 reading/);
    const empty = await run(flavor, ["queue", "dead-letter", "list", "--json", "--db", ws.queuePath]);
    expect(empty.stdout.trim()).toBe("");
  });
});
