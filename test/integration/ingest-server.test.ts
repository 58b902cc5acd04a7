import { afterEach, describe, expect, it } from "vitest";
import type { Stamp } from "../../src/clock/types.ts";
import { type IngestServer, startIngestServer } from "../../src/ingest/index.ts";
import { silentLogger } from "../../src/log/index.ts";
import type { CaptureResult, Reading, StoreResult } from "../../src/queue/types.ts";

/** Records captures; refuses priorities below `refuseBelow`; resolves captures on demand. */
class RecordingQueue {
  readonly captured: Array<Reading & { seq: number }> = [];
  refuseBelow = 0;
  private seq = 100;
  capture(reading: Reading): CaptureResult {
    if (reading.priority < this.refuseBelow)
      return { ok: false, reason: "refused", detail: "only protected rows remain" };
    const seq = ++this.seq;
    this.captured.push({ ...reading, seq });
    return { ok: true, seq };
  }
  async store(readings: Reading[]): Promise<StoreResult> {
    const seqs: number[] = [];
    for (const r of readings) {
      const res = this.capture(r);
      if (!res.ok) return { ok: false, detail: res.detail };
      seqs.push(res.seq);
    }
    return { ok: true, seqs };
  }
}

const stamp: Stamp = {
  bootId: "b1",
  monoNs: 5_000_000_000n,
  wallMs: Date.parse("2026-11-25T12:00:00Z"),
  tq: "ntp",
};
let server: IngestServer | undefined;
afterEach(async () => server?.stop());

function start(
  queue: RecordingQueue,
  maxBodyBytes = 4096,
  auth: { token?: string; monoMs?: () => number } = {},
) {
  server = startIngestServer({
    listen: { host: "127.0.0.1", port: 0 },
    maxBodyBytes,
    ...auth,
    queue,
    now: () => stamp,
    defaults: { priority: 5, qos: 1 },
    log: silentLogger(),
  });
  return `http://127.0.0.1:${server.port}/v1/readings`;
}

const post = (url: string, body: string) =>
  fetch(url, { method: "POST", body, headers: { "content-type": "application/json" } });

describe("Ingest HTTP endpoint", () => {
  it("answers 201 with the seqs once captured, stamping with the clock and ts as an age", async () => {
    const queue = new RecordingQueue();
    const url = start(queue);
    const res = await post(
      url,
      '{"stream":"a","values":{"x":1}}\n{"stream":"b","values":{"y":2},"ts":"2026-11-25T11:59:59.000Z"}',
    );
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ seqs: [101, 102] });
    expect(queue.captured[0]).toMatchObject({ stream: "a", bootId: "b1", monoNs: 5_000_000_000n, tq: "ntp" });
    expect(queue.captured[1]).toMatchObject({
      stream: "b",
      monoNs: 4_000_000_000n,
      wallMs: stamp.wallMs - 1000,
    });
  });

  it("answers 400 with the reason and queues nothing for bad input", async () => {
    const queue = new RecordingQueue();
    const url = start(queue);
    for (const body of [
      "{oops",
      '{"stream":"a#","values":{"x":1}}',
      '{"stream":"a","values":{"x":{}}}',
      '{"stream":"a","values":{"x":1},"priority":42}',
    ]) {
      const res = await post(url, body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toEqual(expect.any(String));
    }
    expect(queue.captured).toEqual([]);
  });

  it("answers 400 for a body over the limit", async () => {
    const queue = new RecordingQueue();
    const url = start(queue, 1024);
    const res = await post(url, `{"stream":"a","values":{"s":"${"x".repeat(2000)}"}}`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/over the limit/);
    expect(queue.captured).toEqual([]);
  });

  it("answers 503 when the queue refuses", async () => {
    const queue = new RecordingQueue();
    queue.refuseBelow = 9;
    const url = start(queue);
    const res = await post(url, '{"stream":"a","values":{"x":1},"priority":3}');
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: string }).error).toMatch(/refused/);
  });

  it("answers 404 and 405 for other paths and methods", async () => {
    const url = start(new RecordingQueue());
    expect((await fetch(url.replace("/v1/readings", "/nope"))).status).toBe(404);
    expect((await fetch(url)).status).toBe(405);
  });

  it("slows down token guessing: after 5 wrong tokens a client waits (429 + Retry-After, doubling), even with the right one; the right one after the wait is taken", async () => {
    const queue = new RecordingQueue();
    let now = 1_000;
    const token = "ingest-token-0123456789";
    const url = start(queue, 4096, { token, monoMs: () => now });
    const send = (bearer: string) =>
      fetch(url, {
        method: "POST",
        body: '{"stream":"a","values":{"x":1}}',
        headers: { "content-type": "application/json", authorization: `Bearer ${bearer}` },
      });
    for (let i = 0; i < 5; i++) expect((await send(`wrong-${i}`)).status).toBe(401);
    const locked = await send(token);
    expect(locked.status).toBe(429);
    expect(locked.headers.get("retry-after")).toBe("1");
    expect(((await locked.json()) as { error: string }).error).toMatch(
      /too many wrong tokens from this address: try again in 1 s with ingest\.token/,
    );
    expect(queue.captured).toEqual([]);
    now += 1_000;
    expect((await send("wrong-again")).status).toBe(401); // the sixth: a 2 s wait
    now += 1_000;
    expect((await send(token)).status).toBe(429);
    now += 1_000;
    expect((await send(token)).status).toBe(201);
    expect(queue.captured).toHaveLength(1);
    // The right token forgets the client: the next wrong one is free again.
    expect((await send("wrong-after")).status).toBe(401);
    expect((await send(token)).status).toBe(201);
  });
});
