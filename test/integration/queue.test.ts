import { Database } from "bun:sqlite";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log/index.ts";
import { openQueue, QueueError, type QueueOptions, type SqliteQueue } from "../../src/queue/index.ts";
import { Workspace } from "../support/fieldrelay.ts";
import { BOOT, ManualClock, reading } from "../support/queue-fakes.ts";
import { WITHOUT_DAC_OVERRIDE } from "../support/tools.ts";

const ws = new Workspace("fr-queue-");
afterAll(() => ws.cleanup());
let dirs = 0;

/** A fresh data dir and a queue on it driven by a ManualClock. */
async function fresh(
  options: Partial<QueueOptions> = {},
  dir = join(ws.dir, `q${++dirs}`),
): Promise<{ q: SqliteQueue; clock: ManualClock; path: string; opts: QueueOptions }> {
  mkdirSync(dir, { recursive: true });
  const clock = new ManualClock();
  const opts: QueueOptions = {
    path: join(dir, "queue.db"),
    log: silentLogger(),
    bootId: BOOT,
    monoMs: clock.monoMs,
    scheduler: clock.scheduler,
    freeDiskBytes: () => 10 * 1024 ** 3,
    ...options,
  };
  return { q: await openQueue(opts), clock, path: opts.path, opts };
}

function seqsOnDisk(path: string): number[] {
  const db = new Database(path, { readonly: true });
  try {
    return (db.query("SELECT seq FROM readings ORDER BY seq").all() as Array<{ seq: number }>).map(
      (r) => r.seq,
    );
  } finally {
    db.close();
  }
}

function captureOk(q: SqliteQueue, r = reading()): number {
  const res = q.capture(r);
  if (!res.ok) throw new Error(`refused: ${res.detail}`);
  return res.seq;
}

describe("Queue seq", () => {
  it("never repeats after draining to empty, closing and reopening", async () => {
    const { q, opts } = await fresh({ commitIntervalMs: 0 });
    const seqs = [captureOk(q), captureOk(q), captureOk(q)];
    q.ack(seqs);
    await q.flush();
    expect(q.stats().rows).toBe(0);
    expect(seqsOnDisk(opts.path)).toEqual([]);
    await q.close();
    const again = await openQueue(opts);
    const seq = captureOk(again);
    expect(seq).toBeGreaterThan(Math.max(...seqs));
    await again.close();
  });

  it("never repeats even when the database file is lost, thanks to the seq side file", async () => {
    const { q, opts } = await fresh({ commitIntervalMs: 0, seqBlock: 10 });
    let last = 0;
    for (let i = 0; i < 25; i++) last = captureOk(q);
    await q.close();
    writeFileSync(opts.path, "garbage, not sqlite ".repeat(300));
    const again = await openQueue(opts);
    expect(captureOk(again)).toBeGreaterThan(last);
    await again.close();
  });
});

describe("Queue write-behind", () => {
  it("never writes a reading acked before its commit deadline to disk", async () => {
    const { q, clock, path } = await fresh({ commitIntervalMs: 1000 });
    const marker = "stream-acked-before-commit";
    const acked = captureOk(q, reading({ stream: marker }));
    const kept = captureOk(q, reading({ stream: "kept" }));
    expect(q.next(10, new Set()).map((r) => r.seq)).toEqual([acked, kept]); // visible before commit
    clock.advance(20);
    q.markInflight([acked]);
    q.ack([acked]);
    clock.advance(1000);
    expect(q.stats()).toMatchObject({ commits: 1, committed: 1, deliveredBeforeCommit: 1, pendingInRam: 0 });
    expect(seqsOnDisk(path)).toEqual([kept]);
    for (const f of readdirSync(join(path, "..")).filter((f) => f.startsWith("queue.db")))
      expect(readFileSync(join(path, "..", f)).includes(marker)).toBe(false);
    await q.close();
  });

  it("commits a batch in ONE transaction at the deadline, and resolves whenCaptured then", async () => {
    const { q, clock, path } = await fresh({ commitIntervalMs: 1000, commitMaxRows: 1000 });
    const seqs = Array.from({ length: 50 }, () => captureOk(q));
    let captured = false;
    void q.whenCaptured(seqs).then(() => {
      captured = true;
    });
    clock.advance(999);
    await Promise.resolve();
    expect(captured).toBe(false);
    expect(seqsOnDisk(path)).toEqual([]);
    clock.advance(1);
    await new Promise((r) => setImmediate(r));
    expect(captured).toBe(true);
    expect(q.stats()).toMatchObject({ commits: 1, committed: 50 });
    expect(seqsOnDisk(path)).toEqual(seqs);
    await q.close();
  });

  it("a commit timer armed for a reading acked meanwhile does not write the younger ones before their deadline", async () => {
    const { q, clock } = await fresh({ commitIntervalMs: 1000 });
    const deliver = () => {
      const got = q.next(100, new Set()).map((r) => r.seq);
      q.markInflight(got);
      return got;
    };
    // A steady stream acked 300 ms after capture, as with a live broker: at every moment some
    // readings are waiting for their ack, none ever reaches its 1 s deadline.
    let inFlight: Array<{ due: number; seqs: number[] }> = [];
    for (let t = 0; t < 5000; t += 20) {
      clock.advance(20);
      for (const a of inFlight.filter((x) => x.due <= clock.now)) q.ack(a.seqs);
      inFlight = inFlight.filter((x) => x.due > clock.now);
      q.capture(reading());
      inFlight.push({ due: clock.now + 300, seqs: deliver() });
    }
    const s = q.stats();
    expect(s.committed).toBe(0);
    expect(s.deliveredBeforeCommit).toBeGreaterThan(200);
    await q.close();
  });

  it("commits at once when commit_max_rows are waiting", async () => {
    const { q } = await fresh({ commitIntervalMs: 60_000, commitMaxRows: 10 });
    for (let i = 0; i < 25; i++) captureOk(q);
    expect(q.stats()).toMatchObject({ commits: 2, committed: 20, pendingInRam: 5 });
    await q.close();
  });

  it("commits each reading synchronously when commit_interval_ms is 0", async () => {
    const { q, path } = await fresh({ commitIntervalMs: 0 });
    const seq = captureOk(q);
    expect(seqsOnDisk(path)).toEqual([seq]);
    expect(q.stats().commits).toBe(1);
    await q.close();
  });

  it("deletes acks of committed rows in the next commit, in one batch", async () => {
    const { q, clock, path } = await fresh({ commitIntervalMs: 100 });
    const seqs = Array.from({ length: 5 }, () => captureOk(q));
    clock.advance(100);
    q.ack(seqs.slice(0, 3));
    expect(q.stats().rows).toBe(2);
    expect(seqsOnDisk(path)).toHaveLength(5);
    clock.advance(100);
    expect(seqsOnDisk(path)).toEqual(seqs.slice(3));
    expect(q.stats()).toMatchObject({ commits: 2, delivered: 3, deliveredBeforeCommit: 0 });
    await q.close();
  });

  it("sends previously inflight rows first after a restart, then priority DESC, seq ASC", async () => {
    const { q, clock, opts } = await fresh({ commitIntervalMs: 100 });
    const low1 = captureOk(q, reading({ priority: 2 }));
    const high = captureOk(q, reading({ priority: 8 }));
    const low2 = captureOk(q, reading({ priority: 2 }));
    const mid = captureOk(q, reading({ priority: 5 }));
    clock.advance(100);
    q.markInflight([low2]);
    clock.advance(100);
    await q.close();
    const again = await openQueue(opts);
    expect(again.next(10, new Set()).map((r) => r.seq)).toEqual([low2, high, mid, low1]);
    expect(again.next(2, new Set([low2, high])).map((r) => r.seq)).toEqual([mid, low1]);
    const r = again.next(1, new Set())[0];
    expect(r).toMatchObject({ bootId: BOOT, tq: "ntp", stream: "env", priority: 2, qos: 1 });
    expect(typeof r?.monoNs).toBe("bigint");
    expect(again.stats().inflight).toBe(1);
    await again.close();
  });

  it("drains a backlog larger than its read-ahead in order, across commits, with none lost or repeated", async () => {
    const { q, clock } = await fresh({ commitIntervalMs: 100, commitMaxRows: 10_000 });
    const captured = Array.from({ length: 700 }, (_, i) => captureOk(q, reading({ priority: 1 + (i % 2) })));
    clock.advance(100); // all on disk
    const sent: number[] = [];
    let turn = 0;
    for (;;) {
      const batch = q.next(50, new Set()).map((r) => r.seq);
      if (batch.length === 0) break;
      // Not yet marked: the same rows come back (nothing is skipped because it was only looked at).
      expect(q.next(50, new Set()).map((r) => r.seq)).toEqual(batch);
      q.markInflight(batch);
      q.ack(batch);
      sent.push(...batch);
      // New readings committed mid-drain join the backlog; a commit every few turns reshapes the disk.
      if (++turn % 3 === 0) {
        captured.push(captureOk(q, reading({ priority: 2 })));
        clock.advance(100);
      }
    }
    expect(new Set(sent).size).toBe(sent.length);
    expect([...sent].sort((a, b) => a - b)).toEqual([...captured].sort((a, b) => a - b));
    expect(q.stats().rows).toBe(0);
    await q.close();
  });
});

describe("Queue budgets", () => {
  it("evicts lowest priority first, oldest within it, counting each by priority", async () => {
    const lines: string[] = [];
    const { createLogger } = await import("../../src/log/index.ts");
    const log = createLogger({ level: "info", destination: { write: (s: string) => lines.push(s) } });
    const { q, clock } = await fresh({ maxRows: 4, commitIntervalMs: 100, log });
    const a = captureOk(q, reading({ priority: 3 }));
    const b = captureOk(q, reading({ priority: 1 }));
    const c = captureOk(q, reading({ priority: 3 }));
    const d = captureOk(q, reading({ priority: 1 }));
    clock.advance(100);
    const e = captureOk(q, reading({ priority: 5 }));
    const f = captureOk(q, reading({ priority: 5 }));
    const g = captureOk(q, reading({ priority: 5 }));
    expect(q.next(10, new Set()).map((r) => r.seq)).toEqual([e, f, g, c]);
    expect(q.stats().evictedByPriority).toEqual({ 1: 2, 3: 1 });
    expect(q.stats().rows).toBe(4);
    void a;
    void b;
    void d;
    const evictionLogs = lines.map((l) => JSON.parse(l)).filter((l) => l.msg?.includes("evicted"));
    expect(evictionLogs).toHaveLength(3);
    expect(evictionLogs[0]).toMatchObject({ level: "warn", evictedByPriority: { 1: 1 }, reason: "max_rows" });
    await q.close();
  });

  it("never evicts protected priorities and refuses low-priority readings when only they remain", async () => {
    const { q } = await fresh({ maxRows: 3, protectedPriority: 9, commitIntervalMs: 100 });
    const protectedSeqs = [captureOk(q, reading({ priority: 9 })), captureOk(q, reading({ priority: 10 }))];
    captureOk(q, reading({ priority: 4 }));
    expect(q.stats().refusing).toBe(false);
    const evicting = captureOk(q, reading({ priority: 4 })); // evicts the older priority-4 reading
    expect(q.stats().evictedByPriority).toEqual({ 4: 1 });
    q.ack([evicting]);
    captureOk(q, reading({ priority: 9 }));
    const refused = q.capture(reading({ priority: 8 }));
    expect(refused).toEqual({ ok: false, reason: "refused", detail: expect.stringContaining("protected") });
    expect(q.stats()).toMatchObject({ refusing: true, refusedByPriority: { 8: 1 } });
    expect(captureOk(q, reading({ priority: 10 }))).toBeGreaterThan(0); // protected: accepted over budget
    expect(q.next(10, new Set()).map((r) => r.seq)).toEqual(expect.arrayContaining(protectedSeqs));
    await q.close();
  });

  it("refuses a reading that is lower than everything evictable rather than evicting higher ones", async () => {
    const { q } = await fresh({ maxRows: 2, commitIntervalMs: 100 });
    captureOk(q, reading({ priority: 5 }));
    captureOk(q, reading({ priority: 6 }));
    expect(q.capture(reading({ priority: 2 }))).toMatchObject({ ok: false });
    expect(q.stats().evictedByPriority).toEqual({});
    await q.close();
  });

  it("keeps payload bytes under max_bytes", async () => {
    const { q } = await fresh({ maxBytes: 2000, commitIntervalMs: 0 });
    let refused = 0;
    for (let i = 0; i < 50; i++) if (!q.capture(reading({ priority: 1 + (i % 3) })).ok) refused++;
    expect(q.stats().bytes).toBeLessThanOrEqual(2000);
    expect(refused).toBeGreaterThan(0); // priority-1 readings once only priorities 2 and 3 are left
    expect(Object.keys(q.stats().evictedByPriority).length).toBeGreaterThan(0);
    await q.close();
  });

  it("evicts when free disk falls below min_free_disk_mb", async () => {
    let free = 100 * 1024 * 1024;
    const { q, clock } = await fresh({ minFreeDiskMb: 64, commitIntervalMs: 100, freeDiskBytes: () => free });
    for (let i = 0; i < 10; i++) captureOk(q, reading({ priority: 2 }));
    clock.advance(100);
    free = 64 * 1024 * 1024 - 500;
    clock.advance(1000); // free disk is looked at before commits and at most once a second
    captureOk(q, reading({ priority: 7 }));
    clock.advance(100);
    const stats = q.stats();
    expect(stats.evictedByPriority[2]).toBeGreaterThan(0);
    expect(q.next(1, new Set())[0]?.priority).toBe(7);
    await q.close();
  });
});

describe("Queue disk full (SQLITE_FULL)", () => {
  it("evicts and retries; when only protected rows fill the disk, holds a bounded RAM batch and reports lastError", async () => {
    const { q, clock } = await fresh({
      commitIntervalMs: 100,
      commitMaxRows: 100,
      maxPageCount: 45, // 40 before the poison_strikes table (#12) and the per-priority counts (#11) took pages
      maxPendingInRam: 300,
    });
    // Fill with low priority until the disk is full: commits keep succeeding by evicting.
    for (let i = 0; i < 3000; i++) captureOk(q, reading({ priority: 1, values: { blob: "x".repeat(200) } }));
    clock.advance(100);
    let stats = q.stats();
    expect(stats.lastError).toBeUndefined();
    expect(stats.evictedByPriority[1]).toBeGreaterThan(0);
    // Now protected readings that cannot be evicted.
    const acked = [];
    for (let i = 0; i < 3000; i++)
      acked.push(captureOk(q, reading({ priority: 10, values: { blob: "y".repeat(200) } })));
    clock.advance(5000);
    stats = q.stats();
    expect(stats.lastError).toMatch(/SQLITE_FULL/);
    expect(stats.pendingInRam).toBeLessThanOrEqual(300);
    expect(stats.pendingInRam).toBeGreaterThan(0);
    // #12: flush is truthful: it rejects while the readings wait in RAM.
    await expect(q.flush()).rejects.toThrow(/commit failed \(SQLITE_FULL/);
    await q.close();
  });
});

describe("Queue start-up", () => {
  it("moves a corrupt database aside (with -wal and -shm), logs it at error, and starts fresh", async () => {
    const dir = join(ws.dir, "corrupt");
    mkdirSync(dir);
    writeFileSync(join(dir, "queue.db"), Buffer.from("this is not a database at all; ".repeat(200)));
    writeFileSync(join(dir, "queue.db-wal"), "junk");
    const lines: string[] = [];
    const { createLogger } = await import("../../src/log/index.ts");
    const log = createLogger({ destination: { write: (s: string) => lines.push(s) } });
    const { q } = await fresh({ log, commitIntervalMs: 0 }, dir);
    const files = readdirSync(dir);
    const moved = files.find((f) => /^queue\.db\.corrupt-[0-9a-f]{8}-1$/.test(f));
    expect(moved).toBeDefined();
    expect(files).toContain(`${moved}-wal`);
    expect(readFileSync(join(dir, moved as string), "utf8")).toContain("this is not a database");
    const err = lines.map((l) => JSON.parse(l)).find((l) => l.level === "error");
    expect(err?.msg).toMatch(/corrupt/);
    const seq = captureOk(q);
    expect(seqsOnDisk(join(dir, "queue.db"))).toEqual([seq]);
    await q.close();
  });

  it("fails with one clear line naming the path and the fix when the data dir is missing", async () => {
    const path = join(ws.dir, "nope", "queue.db");
    const error = await openQueue({ path, log: silentLogger() }).catch((e) => e);
    expect(error).toBeInstanceOf(QueueError);
    expect(error.code).toBe("dir-missing");
    expect(error.describe()).toMatch(new RegExp(`${join(ws.dir, "nope")} does not exist — create it`));
    expect(error.describe()).not.toContain("\n");
  });

  it("fails clearly when a parent of the path is a file", async () => {
    const file = ws.file("plainfile", "x");
    const error = await openQueue({ path: join(file, "queue.db"), log: silentLogger() }).catch((e) => e);
    expect(error).toBeInstanceOf(QueueError);
    expect(error.message).toContain(file);
  });

  it("fails with one clear line when the data dir is read-only", async () => {
    const dir = join(ws.dir, "ro");
    mkdirSync(dir, { mode: 0o555 });
    chmodSync(ws.dir, 0o755);
    chmodSync(dir, 0o555);
    const script = join(ws.dir, "ro-open.ts");
    const src = new URL("../../src/queue/index.ts", import.meta.url).pathname;
    const logSrc = new URL("../../src/log/index.ts", import.meta.url).pathname;
    writeFileSync(
      script,
      `import { openQueue } from ${JSON.stringify(src)};
       import { silentLogger } from ${JSON.stringify(logSrc)};
       try { await openQueue({ path: ${JSON.stringify(join(dir, "queue.db"))}, log: silentLogger() }); console.log("opened"); }
       catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, line: e.describe?.() ?? String(e) })); }`,
    );
    const proc = Bun.spawn([...WITHOUT_DAC_OVERRIDE, process.execPath, script], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const out = await new Response(proc.stdout).text();
    await proc.exited;
    const result = JSON.parse(out.trim().split("\n").pop() as string);
    expect(result).toMatchObject({ name: "QueueError", code: "dir-read-only" });
    expect(result.line).toContain(`${dir} is not writable`);
    expect(result.line).not.toContain("\n");
    expect(existsSync(join(dir, "queue.db"))).toBe(false);
  });
});

describe("Queue stats and anchors", () => {
  it("fills every stats field; oldest unsent age is monotonic age within this boot", async () => {
    const { q, clock } = await fresh({ commitIntervalMs: 100 });
    captureOk(q, reading({ bootId: "earlier-boot", monoNs: 5n }));
    captureOk(q, reading({ monoNs: BigInt(clock.now) * 1_000_000n }));
    clock.advance(100);
    captureOk(q, reading({ monoNs: BigInt(clock.now) * 1_000_000n }));
    clock.advance(2400);
    const s = q.stats();
    expect(s).toEqual({
      captured: 3,
      committed: 3,
      commits: 2,
      delivered: 0,
      deliveredBeforeCommit: 0,
      evictedByPriority: {},
      refusedByPriority: {},
      rows: 3,
      rowsByPriority: { 5: 3 },
      bytes: expect.any(Number),
      pendingInRam: 0,
      inflight: 0,
      oldestUnsentAgeS: 2.5,
      refusing: false,
      lastCommitMonoMs: clock.now - 2300,
      lastCommitAttemptMonoMs: clock.now - 2300,
      lastError: undefined,
      deadLetters: 0,
      lastDeadLetterReason: undefined,
      seqNext: expect.any(Number),
      stateLost: 0,
    });
    await q.close();
  });

  it("stores anchors at once and returns them by boot", async () => {
    const { q, path } = await fresh();
    q.saveAnchor({
      bootId: BOOT,
      monoNs: 123_456_789_012n,
      wallMs: 1_764_000_000_000,
      source: "ntp",
      uncertaintyMs: 12.5,
    });
    q.saveAnchor({ bootId: "other", monoNs: 1n, wallMs: 1, source: "rtc", uncertaintyMs: 1000 });
    const db = new Database(path, { readonly: true });
    expect((db.query("SELECT count(*) AS n FROM anchors").get() as { n: number }).n).toBe(2);
    db.close();
    expect(q.anchorsFor(BOOT)).toEqual([
      {
        bootId: BOOT,
        monoNs: 123_456_789_012n,
        wallMs: 1_764_000_000_000,
        source: "ntp",
        uncertaintyMs: 12.5,
      },
    ]);
    await q.close();
  });
});
