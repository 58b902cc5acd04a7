/**
 * Queue benchmarks (no assertions; prints a table). Run: ./node_modules/.bin/bun test/bench/queue.ts
 *
 * 1. capture throughput, durability=full, default batching — beside raw bun:sqlite inserts of the
 *    same rows, 1000 per transaction (target ratio ≥ 0.5).
 * 3. bytes written to disk per reading (/proc/self/io write_bytes), 50 readings/s driven by the
 *    injectable clock: "online" (each acked 20 ms after capture; target ≤ 50 B) and "offline" (no
 *    acks; target ≤ 4 × stored payload bytes), each beside one transaction per reading.
 * 4. RSS of a fresh process that opens a queue with a 1,000,000-row backlog and calls stats() and
 *    next() (target ≤ 80 MB).
 */
import { Database } from "bun:sqlite";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { silentLogger } from "../../src/log/index.ts";
import { openQueue, payloadBytes, type QueueOptions, type Reading } from "../../src/queue/index.ts";
import { migrate } from "../../src/queue/schema.ts";

export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  baseline: number | undefined;
  ratio: number | undefined;
  target: string;
}

const BOOT = "bench-boot";

function sample(i: number, monoMs: number): Reading {
  return {
    bootId: BOOT,
    monoNs: BigInt(monoMs) * 1_000_000n,
    wallMs: 1_764_000_000_000 + i,
    tq: "ntp",
    stream: "env",
    priority: 5,
    qos: 1,
    values: { temperature_c: 21.5 + (i % 10) / 10, humidity_pct: 40.25, pressure_hpa: 1013.2 },
  };
}

export function writeBytes(): number {
  const m = /write_bytes: (\d+)/.exec(readFileSync("/proc/self/io", "utf8"));
  return Number(m?.[1] ?? 0);
}

/** A hand-driven monotonic clock and scheduler, so simulated minutes take no wall time. */
class SimClock {
  now = 1_000_000;
  private timers = new Map<number, { due: number; fn: () => void }>();
  private id = 0;
  monoMs = () => this.now;
  scheduler = {
    setTimeout: (fn: () => void, ms: number) => {
      this.timers.set(++this.id, { due: this.now + ms, fn });
      return this.id;
    },
    clearTimeout: (h: unknown) => {
      this.timers.delete(h as number);
    },
  };
  advanceTo(t: number): void {
    for (;;) {
      let best: [number, { due: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].due <= t && (!best || e[1].due < best[1].due)) best = e;
      if (!best) break;
      this.timers.delete(best[0]);
      this.now = Math.max(this.now, best[1].due);
      best[1].fn();
    }
    this.now = t;
  }
}

function tempDir(): string {
  // The data dir must be on a real block device for write_bytes to mean anything (not tmpfs).
  return mkdtempSync(join(tmpdir(), "fr-bench-queue-"));
}

async function captureThroughput(): Promise<BenchResult> {
  const n = 100_000;
  const dir = tempDir();
  try {
    const readings = Array.from({ length: n }, (_, i) => sample(i, i));
    const q = await openQueue({
      path: join(dir, "q.db"),
      log: silentLogger(),
      durability: "full",
      freeDiskBytes: () => 1e12,
    });
    let t0 = performance.now();
    for (const r of readings) q.capture(r);
    await q.flush();
    const queueRate = n / ((performance.now() - t0) / 1000);
    await q.close();

    const db = new Database(join(dir, "raw.db"), { create: true, strict: true });
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    migrate(db);
    const insert = db.query(
      "INSERT INTO readings(seq, stream, priority, qos, boot, mono_ns, wall_ms, tq, vals, anomaly, bytes, inflight) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
    );
    t0 = performance.now();
    for (let start = 0; start < n; start += 1000) {
      db.transaction(() => {
        for (let i = start; i < Math.min(n, start + 1000); i++) {
          const r = readings[i] as Reading;
          const vals = JSON.stringify(r.values);
          insert.run(
            i + 1,
            r.stream,
            r.priority,
            r.qos,
            1,
            r.monoNs,
            r.wallMs,
            r.tq,
            vals,
            0,
            payloadBytes(r.stream, r.bootId, r.tq, vals),
          );
        }
      })();
    }
    const rawRate = n / ((performance.now() - t0) / 1000);
    db.close();
    return {
      name: "capture throughput (durability=full, default batching)",
      value: Math.round(queueRate),
      unit: "readings/s",
      baseline: Math.round(rawRate),
      ratio: queueRate / rawRate,
      target: "ratio ≥ 0.5 of raw 1000-row transactions",
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Drive `readings` at 50/s on simulated time; ack each `ackAfterMs` after capture (or never). */
export async function bytesPerReading(
  readings: number,
  ackAfterMs: number | undefined,
  options: Partial<QueueOptions>,
): Promise<{ perReading: number; payloadPerReading: number }> {
  const dir = tempDir();
  try {
    const clock = new SimClock();
    const q = await openQueue({
      path: join(dir, "q.db"),
      log: silentLogger(),
      durability: "full",
      monoMs: clock.monoMs,
      scheduler: clock.scheduler,
      freeDiskBytes: () => 1e12,
      ...options,
    });
    const before = writeBytes();
    const acks: Array<{ due: number; seq: number }> = [];
    for (let i = 0; i < readings; i++) {
      const t = 1_000_000 + i * 20;
      while (acks.length > 0 && (acks[0] as { due: number }).due <= t) {
        const a = acks.shift() as { due: number; seq: number };
        clock.advanceTo(a.due);
        q.markInflight([a.seq]);
        q.ack([a.seq]);
      }
      clock.advanceTo(t);
      const res = q.capture(sample(i, t));
      if (res.ok && ackAfterMs !== undefined) acks.push({ due: t + ackAfterMs, seq: res.seq });
    }
    for (const a of acks) {
      clock.advanceTo(a.due);
      q.ack([a.seq]);
    }
    clock.advanceTo(clock.now + 5000);
    const stats = q.stats();
    await q.close(); // closing checkpoints the WAL into the database: count those bytes too
    const written = writeBytes() - before;
    return {
      perReading: written / readings,
      payloadPerReading: stats.rows > 0 ? stats.bytes / stats.rows : 0,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function rssWithBacklog(): Promise<BenchResult[]> {
  const n = 1_000_000;
  const dir = tempDir();
  try {
    const path = join(dir, "q.db");
    const q = await openQueue({ path, log: silentLogger(), freeDiskBytes: () => 1e12 });
    await q.close();
    const db = new Database(path, { strict: true });
    db.exec("PRAGMA synchronous = OFF");
    db.query("INSERT INTO boots(id, boot_id) VALUES (1, ?)").run(BOOT);
    const insert = db.query(
      "INSERT INTO readings(seq, stream, priority, qos, boot, mono_ns, wall_ms, tq, vals, anomaly, bytes, inflight) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 0)",
    );
    const vals = JSON.stringify(sample(0, 0).values);
    const bytes = payloadBytes("env", BOOT, "ntp", vals);
    for (let start = 0; start < n; start += 50_000) {
      db.transaction(() => {
        for (let i = start; i < start + 50_000; i++)
          insert.run(
            100_000 + i,
            "env",
            1 + (i % 10),
            1,
            1,
            BigInt(i) * 1_000_000n,
            1_764_000_000_000 + i,
            "ntp",
            vals,
            bytes,
          );
      })();
    }
    // The seq mark a queue that wrote these rows would have (else the open reports lost state).
    db.query("INSERT INTO meta(key, value) VALUES ('seq_reserved', ?)").run(100_000 + n);
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    db.close();
    const child = Bun.spawn([process.execPath, fileURLToPath(import.meta.url), "--rss-child", path], {
      stdout: "pipe",
      stderr: "inherit",
    });
    const out = await new Response(child.stdout).text();
    await child.exited;
    const { rssMb, rows, openMs, countMs } = JSON.parse(out.trim()) as {
      rssMb: number;
      rows: number;
      openMs: number;
      countMs: number;
    };
    return [
      {
        name: `RSS with ${rows.toLocaleString("en")}-row backlog (open ${Math.round(openMs)} ms, stats, next)`,
        value: rssMb,
        unit: "MB",
        baseline: undefined,
        ratio: undefined,
        target: "≤ 80 MB",
      },
      {
        name: `open a queue with a ${rows.toLocaleString("en")}-row backlog (vs counting its rows per priority, as every open did before)`,
        value: Math.round(openMs),
        unit: "ms",
        baseline: Math.round(countMs),
        ratio: openMs / countMs,
        target: "ratio ≤ 0.1 (O(priorities), not O(rows))",
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function rssChild(path: string): Promise<void> {
  // The backlog was written without the queue: the first open builds the per-priority counts
  // (once per file, O(rows)); this open reads them. Baseline: counting the rows as every open
  // did before (the GROUP BY), on the same file in the same process.
  const first = await openQueue({ path, log: silentLogger(), bootId: BOOT, freeDiskBytes: () => 1e12 });
  await first.close();
  const tc = performance.now();
  const probe = new Database(path, { readonly: true });
  probe.query("SELECT priority, count(*), sum(bytes) FROM readings GROUP BY priority").all();
  probe.close();
  const countMs = performance.now() - tc;
  const t0 = performance.now();
  const q = await openQueue({ path, log: silentLogger(), bootId: BOOT, freeDiskBytes: () => 1e12 });
  const openMs = performance.now() - t0;
  const s = q.stats();
  q.next(100, new Set());
  q.capture(sample(0, 0));
  await q.flush();
  const rss = process.memoryUsage().rss;
  await q.close();
  process.stdout.write(
    `${JSON.stringify({ rssMb: Math.round((rss / 1024 / 1024) * 10) / 10, rows: s.rows, openMs, countMs })}\n`,
  );
}

export async function runQueueBenchmarks(): Promise<BenchResult[]> {
  const results: BenchResult[] = [await captureThroughput()];
  const online = await bytesPerReading(6_000, 20, {});
  const onlineBase = await bytesPerReading(500, 20, { commitIntervalMs: 0 });
  results.push({
    name: "bytes written per reading, online (50/s, acked after 20 ms)",
    value: Math.round(online.perReading),
    unit: "B",
    baseline: Math.round(onlineBase.perReading),
    ratio: onlineBase.perReading > 0 ? online.perReading / onlineBase.perReading : undefined,
    target: "≤ 50 B (baseline: one transaction per reading)",
  });
  const offline = await bytesPerReading(6_000, undefined, {});
  const offlineBase = await bytesPerReading(500, undefined, { commitIntervalMs: 0 });
  results.push({
    name: `bytes written per reading, offline (50/s, no acks; payload ${Math.round(offline.payloadPerReading)} B)`,
    value: Math.round(offline.perReading),
    unit: "B",
    baseline: Math.round(offlineBase.perReading),
    ratio: offline.perReading / offlineBase.perReading,
    target: `≤ ${Math.round(4 * offline.payloadPerReading)} B (4 × payload; baseline: one transaction per reading)`,
  });
  results.push(...(await rssWithBacklog()));
  return results;
}

function printTable(results: BenchResult[]): void {
  const rows = results.map((r) => [
    r.name,
    `${r.value.toLocaleString("en")} ${r.unit}`,
    r.baseline === undefined ? "-" : `${r.baseline.toLocaleString("en")} ${r.unit}`,
    r.ratio === undefined ? "-" : r.ratio.toFixed(3),
    r.target,
  ]);
  const head = ["benchmark", "value", "baseline", "ratio", "target"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ");
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
  for (const r of rows) console.log(line(r));
}

if (import.meta.main) {
  if (process.argv[2] === "--rss-child") await rssChild(process.argv[3] as string);
  else printTable(await runQueueBenchmarks());
}
