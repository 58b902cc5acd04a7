/**
 * Inflight marks and deletes written as runs of seqs (src/queue/inflight.ts), with the real
 * SQLite queue and real kill -9: what the batching publisher relies on after a crash.
 */
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log/index.ts";
import { openQueue, openQueueReader, type QueueOptions } from "../../src/queue/index.ts";
import { consecutiveRuns } from "../../src/queue/inflight.ts";
import { Workspace } from "../support/fieldrelay.ts";
import { reading } from "../support/queue-fakes.ts";

const ws = new Workspace("fr-queue-inflight-");
afterAll(() => ws.cleanup());
const CHILD = fileURLToPath(new URL("../support/inflight-child.ts", import.meta.url));
let dirs = 0;

function options(): QueueOptions {
  const dir = join(ws.dir, `q${++dirs}`);
  mkdirSync(dir, { recursive: true });
  return { path: join(dir, "queue.db"), log: silentLogger(), commitIntervalMs: 3_600_000 };
}

/** A queue file holding `n` readings: priorities 5 and 2 interleaved 3:1, four streams. */
async function backlog(n: number): Promise<{ opts: QueueOptions; seqs: number[] }> {
  const opts = options();
  const q = await openQueue(opts);
  const seqs: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = q.capture(reading({ priority: i % 4 === 3 ? 2 : 5, stream: `s${i % 4}`, values: { i } }));
    if (!res.ok) throw new Error(res.detail);
    seqs.push(res.seq);
  }
  await q.close();
  return { opts, seqs };
}

function table<T>(path: string, sql: string): T[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.query(sql).all() as T[];
  } finally {
    db.close();
  }
}

/** Run the child to its "ready", SIGKILL it, and return the seqs it took. */
async function crashAfter(
  path: string,
  take: number,
  acks: number[],
  mode: "commit" | "hold",
): Promise<number[]> {
  const child = Bun.spawn(
    [process.execPath, CHILD, path, String(take), acks.length ? acks.join(",") : "-", mode],
    {
      stdout: "pipe",
      stderr: "inherit",
    },
  );
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes("ready\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`child exited before ready: ${text}`);
    text += decoder.decode(value);
  }
  child.kill("SIGKILL");
  await child.exited;
  expect(child.signalCode).toBe("SIGKILL");
  const line = text.split("\n").find((l) => l.startsWith("taken ")) as string;
  return line.slice(6).split(",").map(Number);
}

describe("inflight marks as runs of seqs", () => {
  it("cuts sorted seqs into runs of consecutive integers", () => {
    expect(consecutiveRuns([])).toEqual([]);
    expect(consecutiveRuns([4])).toEqual([[4, 4]]);
    expect(consecutiveRuns([1, 2, 3, 5, 7, 8, 10])).toEqual([
      [1, 3],
      [5, 5],
      [7, 8],
      [10, 10],
    ]);
  });

  it("writes a block of marked seqs as a few rows, not a flag per reading, and reads them back after a restart", async () => {
    const { opts, seqs } = await backlog(3000);
    const q = await openQueue(opts);
    const taken = q.next(2000, new Set()).map((r) => r.seq);
    q.markInflight(taken);
    await q.flush();
    // Priority 5 first: its seqs have gaps where the priority 2 rows are (one run per gap).
    const runs = table<{ lo: number; hi: number }>(opts.path, "SELECT lo, hi FROM inflight_runs ORDER BY lo");
    expect(runs).toEqual(consecutiveRuns([...taken].sort((a, b) => a - b)).map(([lo, hi]) => ({ lo, hi })));
    expect(table(opts.path, "SELECT seq FROM readings WHERE inflight = 1")).toEqual([]);
    await q.close();

    const again = await openQueue(opts);
    expect(again.stats().inflight).toBe(taken.length);
    const order = again.next(3000, new Set()).map((r) => r.seq);
    expect(order.slice(0, taken.length)).toEqual([...taken].sort((a, b) => a - b));
    expect(new Set(order)).toEqual(new Set(seqs));
    const file = openQueueReader(opts.path);
    expect(file.stats().inflight).toBe(taken.length);
    expect(file.peek(taken.length + 1).map((r) => [r.seq, r.inflight])).toEqual([
      ...[...taken].sort((a, b) => a - b).map((s) => [s, true]),
      [order[taken.length], false],
    ]);
    file.close();
    await again.close();
  });

  it("deletes acked rows exactly (runs of acked seqs, never a neighbour) and drops a run once its rows are gone", async () => {
    const { opts, seqs } = await backlog(1200);
    const q = await openQueue(opts);
    const taken = q.next(1200, new Set()).map((r) => r.seq);
    q.markInflight(taken);
    await q.flush();
    // Acks as a batching publisher gets them: one stream's batch at a time (every 4th seq).
    const stream0 = seqs.filter((_, i) => i % 4 === 0);
    q.ack(stream0);
    await q.flush();
    expect(
      table<{ seq: number }>(opts.path, "SELECT seq FROM readings ORDER BY seq").map((r) => r.seq),
    ).toEqual(seqs.filter((_, i) => i % 4 !== 0));
    expect(q.stats().inflight).toBe(seqs.length - stream0.length);
    const rest = seqs.filter((_, i) => i % 4 !== 0);
    q.ack(rest);
    await q.flush();
    expect(table(opts.path, "SELECT seq FROM readings")).toEqual([]);
    expect(table(opts.path, "SELECT lo FROM inflight_runs")).toEqual([]);
    expect(q.stats()).toMatchObject({ rows: 0, inflight: 0, delivered: seqs.length });
    await q.close();
  });

  it("after kill -9 with readings inflight: they come first after the restart, with the same seqs; acked ones never again", async () => {
    const { opts, seqs } = await backlog(3000);
    const acked = seqs.filter((_, i) => i < 1600 && i % 4 === 1); // one stream's batches were acked
    const taken = await crashAfter(opts.path, 2000, acked, "commit");
    const unacked = taken.filter((s) => !acked.includes(s)).sort((a, b) => a - b);
    const q = await openQueue(opts);
    expect(q.stats().inflight).toBe(unacked.length);
    const order = q.next(5000, new Set()).map((r) => r.seq);
    expect(order.slice(0, unacked.length)).toEqual(unacked);
    expect(new Set(order)).toEqual(new Set(seqs.filter((s) => !acked.includes(s))));
    expect(order.length).toBe(seqs.length - acked.length);
    await q.close();
  });

  it("a kill -9 between a batch's ack and the commit of its delete re-sends that batch (first, same seqs), never loses it", async () => {
    const { opts, seqs } = await backlog(1000);
    const acked = seqs.filter((_, i) => i < 400 && i % 4 === 2);
    const taken = await crashAfter(opts.path, 600, acked, "hold");
    const q = await openQueue(opts);
    // The acks were never committed: every taken reading is still there and still inflight.
    expect(q.stats().inflight).toBe(taken.length);
    const order = q.next(5000, new Set()).map((r) => r.seq);
    expect(order.slice(0, taken.length)).toEqual([...taken].sort((a, b) => a - b));
    expect(new Set(order)).toEqual(new Set(seqs));
    await q.close();
  });
});
