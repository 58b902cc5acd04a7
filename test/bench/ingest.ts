/**
 * Ingest and stats benchmarks (no assertions; rows for npm run bench). Broker down, durability
 * full, the real ingest HTTP server in front of the real SQLite queue on the machine's tmpdir.
 *
 * 5. One client posting one reading at a time and waiting for each 201, default commit interval
 *    (1000 ms): median and p99 latency per request (broker down, so the gathering window
 *    queue.ingest_commit_ms bounds it; before #11 it was the commit interval, ~1000 ms).
 *    Baseline: the same client with commit_interval_ms = 0.
 * 6. 50 concurrent clients doing the same: readings/s and fsyncs (commits) per reading, against
 *    commit_interval_ms = 0 in the same run (target ≥ 5× fewer fsyncs at ≥ the same readings/s).
 * 8. Flash wear of the ingest path: bytes written to disk (/proc/self/io write_bytes) per reading
 *    when a client posts one reading per request at 50 requests/s (open loop) and waits for each
 *    201, online (a publisher stand-in acks each reading 20 ms after it is offered, as the queue
 *    bench does) and offline (no acks), product defaults — beside the same figure for readings
 *    captured straight into the queue (benchmark 3 of queue.ts, run here). Target: online ≤ 50 B
 *    (as direct capture); offline is reported (bought with latency). FIELDRELAY_BENCH_INGEST_SWEEP=1 also
 *    prints the figures for other queue.ingest_commit_ms values (how the default was chosen).
 * 7. stats() on a queue with 1,000,000 rows over 3 boots while the oldest unsent row of this boot
 *    keeps being acked (each ack moves the oldest): µs per call, beside stats() on a 1,000-row
 *    queue (target ratio ≤ 2: O(1) per call, not a scan of earlier boots).
 */
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startIngestServer } from "../../src/ingest/index.ts";
import { silentLogger } from "../../src/log/index.ts";
import { openQueue, type SqliteQueue } from "../../src/queue/index.ts";
import { migrate } from "../../src/queue/schema.ts";
import { bytesPerReading, writeBytes } from "./queue.ts";
import type { BenchRow } from "./run.ts";

const BOOT = "bench-boot-3";
const stamp = { bootId: BOOT, monoNs: 1_000_000_000n, wallMs: 1_764_000_000_000, tq: "ntp" as const };

async function withServer<T>(
  commitIntervalMs: number,
  fn: (url: string, q: SqliteQueue) => Promise<T>,
  ingestCommitMs?: number,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "fr-bench-ingest-"));
  const q = await openQueue({
    path: join(dir, "queue.db"),
    log: silentLogger(),
    bootId: BOOT,
    durability: "full",
    commitIntervalMs,
    ...(ingestCommitMs === undefined ? {} : { ingestCommitMs }),
    freeDiskBytes: () => 1e12,
  });
  const server = startIngestServer({
    listen: { host: "127.0.0.1", port: 0 },
    maxBodyBytes: 65536,
    queue: q,
    now: () => stamp,
    defaults: { priority: 5, qos: 1 },
    log: silentLogger(),
  });
  try {
    return await fn(`http://127.0.0.1:${server.port}/v1/readings`, q);
  } finally {
    await server.stop();
    await q.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const body = (i: number) => JSON.stringify({ stream: "door", values: { open: i % 2 === 0, n: i } });

async function post(url: string, i: number): Promise<void> {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: body(i),
  });
  if (r.status !== 201) throw new Error(`ingest answered ${r.status}: ${await r.text()}`);
  await r.arrayBuffer();
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
};

async function oneClient(commitIntervalMs: number, n: number): Promise<{ median: number; p99: number }> {
  return withServer(commitIntervalMs, async (url) => {
    const ms: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await post(url, i);
      ms.push(performance.now() - t);
    }
    return { median: quantile(ms, 0.5), p99: quantile(ms, 0.99) };
  });
}

async function manyClients(
  commitIntervalMs: number,
  clients: number,
  seconds: number,
): Promise<{ perS: number; fsyncsPerReading: number }> {
  return withServer(commitIntervalMs, async (url, q) => {
    const commits0 = q.stats().commits;
    let done = 0;
    const end = performance.now() + seconds * 1000;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        for (let i = 0; performance.now() < end; i++) {
          await post(url, c * 1_000_000 + i);
          done++;
        }
      }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    return { perS: done / elapsed, fsyncsPerReading: (q.stats().commits - commits0) / done };
  });
}

/**
 * Benchmark 8: one reading per POST at 50/s for `seconds`, waiting for each 201; acked
 * `ackAfterMs` after the queue offers it (or never). Bytes written per reading, and the answers'
 * median latency.
 */
async function ingestWear(
  ackAfterMs: number | undefined,
  seconds: number,
  ingestCommitMs?: number,
): Promise<{ perReading: number; readings: number; commits: number; medianMs: number }> {
  return withServer(
    1000,
    async (url, q) => {
      const taken = new Set<number>();
      const unsubscribe = q.onAvailable(() => {
        if (ackAfterMs === undefined) return;
        const got = q.next(1000, taken).map((r) => r.seq);
        if (got.length === 0) return;
        q.markInflight(got);
        for (const s of got) taken.add(s);
        setTimeout(() => {
          q.ack(got);
          for (const s of got) taken.delete(s);
        }, ackAfterMs);
      });
      const before = writeBytes();
      const commits0 = q.stats().commits;
      const n = seconds * 50;
      const ms: number[] = [];
      const answers: Array<Promise<void>> = [];
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const wait = t0 + i * 20 - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const t = performance.now();
        answers.push(post(url, i).then(() => void ms.push(performance.now() - t)));
      }
      await Promise.all(answers);
      await new Promise((r) => setTimeout(r, 200));
      unsubscribe();
      await q.flush();
      const commits = q.stats().commits - commits0;
      // Closing (withServer) checkpoints the WAL: count those bytes too, as the queue bench does.
      await q.close();
      return { perReading: (writeBytes() - before) / n, readings: n, commits, medianMs: quantile(ms, 0.5) };
    },
    ingestCommitMs,
  );
}

/** A queue file with `rows` rows spread over 3 boots (the last one is this boot). */
function buildBacklog(path: string, rows: number): void {
  const db = new Database(path, { create: true, strict: true });
  db.exec("PRAGMA page_size = 1024");
  db.exec("PRAGMA journal_mode = WAL");
  migrate(db);
  const boots = ["bench-boot-1", "bench-boot-2", BOOT];
  db.transaction(() => {
    for (const b of boots) db.query("INSERT INTO boots(boot_id) VALUES (?)").run(b);
    const ins = db.query(
      "INSERT INTO readings(seq, stream, priority, qos, boot, mono_ns, wall_ms, tq, vals, anomaly, bytes, inflight) VALUES (?, 'env', 5, 1, ?, ?, ?, 'ntp', '{\"t\":21.5}', 0, 100, 0)",
    );
    for (let i = 1; i <= rows; i++) {
      const boot = Math.min(3, Math.ceil((i * 3) / rows));
      ins.run(i, boot, i * 1_000_000, 1_764_000_000_000 + i);
    }
  })();
  db.close();
}

async function statsMicros(rows: number, calls: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "fr-bench-stats-"));
  try {
    const path = join(dir, "queue.db");
    buildBacklog(path, rows);
    const q = await openQueue({
      path,
      log: silentLogger(),
      bootId: BOOT,
      commitIntervalMs: 60_000,
      maxRows: 2_000_000,
    });
    q.stats(); // the first call finds where this boot starts, once
    const firstOfBoot = Math.floor((rows * 2) / 3) + 1;
    const t = performance.now();
    for (let i = 0; i < calls; i++) {
      q.ack([firstOfBoot + i]); // the oldest unsent row of this boot goes
      q.stats();
    }
    const us = ((performance.now() - t) * 1000) / calls;
    await q.close();
    return us;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function wearRows(): Promise<BenchRow[]> {
  if (process.env.FIELDRELAY_BENCH_INGEST_SWEEP === "1") {
    for (const w of [0, 20, 50, 100, 200, 500]) {
      const on = await ingestWear(20, 6, w);
      const off = await ingestWear(undefined, 6, w);
      process.stderr.write(
        `bench: ingest_commit_ms=${w}: online ${on.perReading.toFixed(0)} B/reading (${on.commits} commits, median ${on.medianMs.toFixed(1)} ms), offline ${off.perReading.toFixed(0)} B/reading (${off.commits} commits, median ${off.medianMs.toFixed(1)} ms)\n`,
      );
    }
  }
  const online = await ingestWear(20, 10);
  const offline = await ingestWear(undefined, 10);
  const directOnline = await bytesPerReading(3000, 20, {});
  const directOffline = await bytesPerReading(3000, undefined, {});
  return [
    {
      name: `ingest bytes written per reading, 1 reading per POST at 50/s, online (acked after 20 ms; ${online.commits} commits for ${online.readings}; median 201 ${online.medianMs.toFixed(1)} ms) (vs direct capture)`,
      value: Math.round(online.perReading),
      unit: "B",
      baseline: Math.round(directOnline.perReading),
      ratio: directOnline.perReading > 0 ? online.perReading / directOnline.perReading : undefined,
      target: "≤ 50 B (direct capture's target; was ~6 800 B: one commit per reading)",
    },
    {
      name: `ingest bytes written per reading, same, offline (no acks; ${offline.commits} commits for ${offline.readings}; median 201 ${offline.medianMs.toFixed(1)} ms) (vs direct capture)`,
      value: Math.round(offline.perReading),
      unit: "B",
      baseline: Math.round(directOffline.perReading),
      ratio: offline.perReading / directOffline.perReading,
      target: `reported: bought with the 201's latency (queue.ingest_commit_ms); direct capture waits 1 s (payload ${Math.round(directOffline.payloadPerReading)} B)`,
    },
  ];
}

export async function runIngestBenchmarks(): Promise<BenchRow[]> {
  const wear = await wearRows();
  const single = await oneClient(1000, 200);
  const singleZero = await oneClient(0, 200);
  const many = await manyClients(1000, 50, 5);
  const manyZero = await manyClients(0, 50, 5);
  const bigStats = await statsMicros(1_000_000, 200);
  const smallStats = await statsMicros(1_000, 200);
  return [
    ...wear,
    {
      name: "ingest, 1 client, 1 reading per request, broker down, durability=full, commit_interval_ms=1000: median (vs commit_interval_ms=0)",
      value: single.median,
      unit: "ms",
      baseline: singleZero.median,
      ratio: single.median / singleZero.median,
      target: "median ≤ ingest_commit_ms (200) + 5 ms: the gathering window, broker down (was ~1000 ms)",
    },
    {
      name: "same, p99 per request",
      value: single.p99,
      unit: "ms",
      baseline: singleZero.p99,
      ratio: single.p99 / singleZero.p99,
      target: "",
    },
    {
      name: "ingest, 50 concurrent clients, readings/s (vs commit_interval_ms=0)",
      value: many.perS,
      unit: "readings/s",
      baseline: manyZero.perS,
      ratio: many.perS / manyZero.perS,
      target: "ratio ≥ 1",
    },
    {
      name: "ingest, 50 concurrent clients, fsyncs per reading (vs commit_interval_ms=0)",
      value: many.fsyncsPerReading,
      unit: "fsync/reading",
      baseline: manyZero.fsyncsPerReading,
      ratio: manyZero.fsyncsPerReading / many.fsyncsPerReading,
      target: "≥ 5× fewer",
    },
    {
      name: "stats() with 1 000 000 rows over 3 boots, oldest unsent row acked before each call (vs 1 000 rows)",
      value: bigStats,
      unit: "µs/call",
      baseline: smallStats,
      ratio: bigStats / smallStats,
      target: "≤ 1000 µs (was 49–114 ms: a rescan of earlier boots)",
    },
  ];
}
