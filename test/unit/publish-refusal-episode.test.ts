/**
 * Transient refusals over a long time (#12 hardening), on the manual scheduler: hours of 0x97 in
 * milliseconds of test. The broker is faked here only to hold the clock; the same path runs
 * against mosquitto in test/integration/publish-broker-faults.test.ts.
 */
import { EventEmitter } from "node:events";
import type { IClientPublishOptions, MqttClient } from "mqtt";
import { describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/index.ts";
import { createLogger } from "../../src/log/index.ts";
import { createPublisher, ManualScheduler } from "../../src/publish/index.ts";
import { MemoryQueue, reading } from "../support/memory-queue.ts";

class Client extends EventEmitter {
  outgoing = {};
  pending: Array<{ topic: string; cb: (e?: Error) => void }> = [];
  publish(topic: string, _p: unknown, _o: IClientPublishOptions, cb: (e?: Error) => void) {
    if (!topic.endsWith("/status")) this.pending.push({ topic, cb });
    return this;
  }
  subscribe() {
    return this;
  }
  end() {
    return this;
  }
  /** Answer every reading message in flight: refused with `code`, or acked. */
  answer(code?: number) {
    for (const p of this.pending.splice(0))
      p.cb(code === undefined ? undefined : Object.assign(new Error(`Publish error: ${code}`), { code }));
  }
}

const flush = () => new Promise((r) => setImmediate(r));

describe("a broker refusing for now for hours (0x97)", () => {
  it("warns at the start and every 10 min, never drops, reports refusingForS, and ends on the first ack", async () => {
    const scheduler = new ManualScheduler();
    const queue = new MemoryQueue();
    for (let i = 0; i < 5; i++) queue.capture(reading({ values: { n: i } }));
    const lines: Array<Record<string, unknown>> = [];
    const client = new Client();
    const publisher = createPublisher({
      mqtt: configSchema.parse({
        device: { id: "pi-7" },
        mqtt: { protocol_version: 5, max_inflight: 1, min_backoff_s: 1, max_backoff_s: 60 },
      }).mqtt,
      deviceId: "pi-7",
      queue,
      stamp: (r) => ({ wallMs: r.wallMs, tq: r.tq, errMs: 0 }),
      log: createLogger({
        level: "debug",
        destination: { write: (s: string) => lines.push(JSON.parse(s)) },
        nowMs: scheduler.monoMs, // the logger's own repeat limit runs on the same (fake) time
      }),
      random: () => 1,
      monoMs: scheduler.monoMs,
      scheduler,
      connect: () => client as unknown as MqttClient,
    });
    publisher.start();
    client.emit("connect");
    await flush();
    // Two hours of refusals: each retry waits the capped backoff (60 s with random() = 1).
    for (let t = 0; t < 120; t++) {
      client.answer(0x97);
      await flush();
      scheduler.advance(60_000);
      await flush();
    }
    const warns = lines.filter((l) => l.level === "warn" && /refuses messages for now/.test(String(l.msg)));
    // At 0 min, then every 10 min: 12 in 2 hours (not one per retry: 120).
    expect(warns.length).toBe(12);
    expect(warns.at(-1)?.refusals).toBeGreaterThanOrEqual(110);
    const stats = publisher.stats();
    expect(stats.refusingForS).toBeGreaterThanOrEqual(7100);
    expect(stats.refusedTransient).toBe(120);
    expect(queue.size).toBe(5);
    expect(queue.deadLetters).toEqual([]);
    client.answer(); // the broker takes it
    await flush();
    expect(publisher.stats().refusingForS).toBe(0);
    expect(lines.filter((l) => l.msg === "broker takes messages again")).toHaveLength(1);
    expect(queue.size).toBe(4);
  });
});
