/**
 * The queue under storage faults, on real filesystems: a small tmpfs that fills up (another file
 * takes the space, as a growing log does), a free-disk floor, budgets met inside one ingest
 * request, QoS 0, a second writer. Each case keeps one promise: a 201 (or whenCaptured) only for
 * a reading that is stored or broker-acknowledged, and eviction never loses more than it gains.
 */
import { Database } from "bun:sqlite";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type IngestServer, startIngestServer } from "../../src/ingest/index.ts";
import { createLogger, silentLogger } from "../../src/log/index.ts";
import {
  openQueue,
  openQueueReader,
  QueueError,
  type QueueOptions,
  type SqliteQueue,
} from "../../src/queue/index.ts";
import { REPO, Workspace } from "../support/fieldrelay.ts";
import { BOOT, ManualClock, reading } from "../support/queue-fakes.ts";
import { cannotMount, Tmpfs } from "../support/tmpfs.ts";

/** Ingest takes JSON/NDJSON only (#12). */
const NDJSON = { "content-type": "application/x-ndjson" };

const ws = new Workspace("fr-qfault-");
const mounts: Tmpfs[] = [];
afterAll(() => {
  for (const m of mounts) m.unmount();
  ws.cleanup();
});
const skip = cannotMount();
let n = 0;

function tmpfs(size: string): Tmpfs {
  const m = Tmpfs.mount(join(ws.dir, `fs${++n}`), size);
  mounts.push(m);
  return m;
}

function captureOk(q: SqliteQueue, r = reading()): number {
  const res = q.capture(r);
  if (!res.ok) throw new Error(`refused: ${res.detail}`);
  return res.seq;
}

function countByPriority(path: string): Record<number, number> {
  const db = new Database(path, { readonly: true });
  try {
    const out: Record<number, number> = {};
    for (const r of db
      .query("SELECT priority, count(*) AS n FROM readings GROUP BY priority")
      .all() as Array<{
      priority: number;
      n: number;
    }>)
      out[r.priority] = r.n;
    return out;
  } finally {
    db.close();
  }
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

function options(dir: string, clock: ManualClock, over: Partial<QueueOptions> = {}): QueueOptions {
  return {
    path: join(dir, "queue.db"),
    log: silentLogger(),
    bootId: BOOT,
    monoMs: clock.monoMs,
    scheduler: clock.scheduler,
    minFreeDiskMb: 0,
    ...over,
  };
}

const blob = (c: string) => ({ blob: c.repeat(200) });

describe.skipIf(skip)("Queue on a full disk (real tmpfs)", () => {
  it("evicts nothing while a commit cannot succeed, and never more than the batch needs", async () => {
    const fs = tmpfs("2m");
    const clock = new ManualClock();
    const q = await openQueue(options(fs.dir, clock, { commitIntervalMs: 100, commitMaxRows: 5000 }));
    for (let i = 0; i < 2000; i++) captureOk(q, reading({ priority: 1, values: blob("a") }));
    await q.flush();
    expect(countByPriority(q.path)[1]).toBe(2000);
    fs.fill();
    for (let i = 0; i < 100; i++) captureOk(q, reading({ priority: 5, values: blob("b") }));
    for (let retry = 0; retry < 6; retry++) clock.advance(1000);
    // Whatever the queue counts as evicted must really be gone from disk: nothing was freed.
    const evictedWhileFull = q.stats().evictedByPriority[1] ?? 0;
    expect(2000 - (countByPriority(q.path)[1] ?? 0)).toBe(evictedWhileFull);
    fs.unfill();
    clock.advance(1000);
    expect(q.stats().lastError).toBeUndefined();
    const onDisk = countByPriority(q.path);
    expect(onDisk[5]).toBe(100);
    const evicted = q.stats().evictedByPriority[1] ?? 0;
    expect(2000 - (onDisk[1] ?? 0)).toBe(evicted);
    // 100 incoming rows of the same size can never justify evicting more than about 100.
    expect(evicted).toBeLessThanOrEqual(150);
    await q.close();
  });

  it("a batch refused because its commit failed leaves nothing evicted for it", async () => {
    const fs = tmpfs("2m");
    const clock = new ManualClock();
    const q = await openQueue(options(fs.dir, clock, { commitIntervalMs: 100, maxRows: 200 }));
    for (let i = 0; i < 200; i++) captureOk(q, reading({ priority: 1, values: blob("f") }));
    await q.flush();
    fs.fill();
    // Over max_rows: room is made by evicting 10 priority-1 rows, then the commit cannot happen.
    const stored = q.store(Array.from({ length: 10 }, () => reading({ priority: 5, values: blob("g") })));
    clock.advance(100); // the gathering window: min(commit_interval_ms, ingest_commit_ms)
    const result = await stored;
    expect(result.ok).toBe(false);
    expect(q.stats().evictedByPriority[1] ?? 0).toBe(0);
    fs.unfill();
    await q.flush(); // a delete still waiting for a commit would happen now
    expect(countByPriority(q.path)[1]).toBe(200); // nothing was deleted for the refused batch
    await q.close();
  });

  it("a body the broker has when its commit fails is answered by the broker's acks (201), else refused at its deadline", async () => {
    const fs = tmpfs("2m");
    const clock = new ManualClock();
    const q = await openQueue(options(fs.dir, clock, { commitIntervalMs: 1000, ingestCommitMs: 100 }));
    captureOk(q);
    await q.flush();
    fs.fill();
    // A connected publisher: takes what next() offers and marks it inflight at once.
    const take = () => {
      const got = q.next(100, new Set()).map((r) => r.seq);
      q.markInflight(got);
      return got;
    };
    // 1. Acked after the failed commit: 201 with its seqs, and nothing of it ever written.
    const big = (c: string) =>
      Array.from({ length: 40 }, () => reading({ values: { blob: c.repeat(4000) } }));
    const acked = q.store(big("h"));
    const sent = take();
    // With the broker, the batch waits for acks up to commit_interval_ms; then the commit fails
    // (disk full) and it waits on for the broker.
    clock.advance(1000);
    expect(q.stats().lastError).toMatch(/SQLITE_FULL/);
    q.ack(sent);
    const r1 = await acked;
    expect(r1).toEqual({ ok: true, seqs: sent.filter((s) => s > 1) });
    // 2. Never acked: refused at the deadline, and the refusal says the broker may still have it.
    const silent = q.store(big("j"));
    const sent2 = take();
    clock.advance(1000);
    clock.advance(5000);
    const r2 = await silent;
    expect(r2.ok).toBe(false);
    expect(r2.ok ? "" : r2.detail).toMatch(new RegExp(`may still .*${sent2.at(-1)}`));
    // 3. Not handed to the broker (offline): refused at the failed commit, withdrawn (never sent).
    const offline = q.store(big("k"));
    clock.advance(1000);
    const r3 = await offline;
    expect(r3.ok).toBe(false);
    expect(q.next(100, new Set(sent2)).map((r) => r.seq)).toEqual([]);
    fs.unfill();
    await q.close();
  });

  it("min_free_disk_mb keeps the file from growing: evicts what a batch needs, not the shortfall", async () => {
    const fs = tmpfs("12m");
    const clock = new ManualClock();
    const q = await openQueue(
      options(fs.dir, clock, { commitIntervalMs: 100, commitMaxRows: 50_000, minFreeDiskMb: 4 }),
    );
    for (let i = 0; i < 3000; i++) captureOk(q, reading({ priority: 5, values: blob("c") }));
    await q.flush();
    fs.fill(2 * 1024 * 1024); // below the 4 MiB floor
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 10; i++) q.capture(reading({ priority: 5, values: blob("d") }));
      clock.advance(100);
    }
    const onDisk = countByPriority(q.path)[5] ?? 0;
    expect(onDisk).toBeGreaterThanOrEqual(2990);
    expect(q.stats().evictedByPriority[5] ?? 0).toBeLessThanOrEqual(60);
    // A lower priority than everything evictable is refused, and nothing is evicted for it.
    const before = q.stats().evictedByPriority[5] ?? 0;
    const res = q.capture(reading({ priority: 1, values: blob("e") }));
    clock.advance(100);
    if (res.ok) expect(countByPriority(q.path)[1] ?? 0).toBe(1);
    else expect(q.stats().evictedByPriority[5] ?? 0).toBe(before);
    await q.close();
  });

  it("an eviction made for the free-disk floor is logged with reason min_free_disk_mb (not max_bytes)", async () => {
    const fs = tmpfs("12m");
    const clock = new ManualClock();
    const logs: Array<Record<string, unknown>> = [];
    const log = createLogger({
      level: "debug",
      destination: { write: (l: string) => logs.push(JSON.parse(l)) },
    });
    // max_bytes far away; the floor is what triggers.
    const q = await openQueue(
      options(fs.dir, clock, { log, commitIntervalMs: 100, commitMaxRows: 50_000, minFreeDiskMb: 4 }),
    );
    for (let i = 0; i < 3000; i++) captureOk(q, reading({ priority: 2, values: blob("c") }));
    await q.flush();
    fs.fill(2 * 1024 * 1024);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 10; i++) q.capture(reading({ priority: 5, values: blob("d") }));
      q.store([reading({ priority: 5, values: blob("e") })]);
      clock.advance(1000);
    }
    const evictions = logs.filter((l) => l.msg === "queue over budget: evicted readings");
    expect(evictions.length).toBeGreaterThan(0);
    for (const e of evictions) expect(e.reason).toBe("min_free_disk_mb");
    await q.close();
  });

  it("keeps capturing across a seq-block boundary, stores anchors in RAM, and reopens on a full disk", async () => {
    const fs = tmpfs("1m");
    const clock = new ManualClock();
    const opts = options(fs.dir, clock, { commitIntervalMs: 100, seqBlock: 10 });
    const q = await openQueue(opts);
    captureOk(q, reading({ priority: 9 }));
    await q.flush();
    fs.fill();
    const seqs: number[] = [];
    for (let i = 0; i < 25; i++) seqs.push(captureOk(q, reading({ priority: 9 }))); // crosses 2 blocks
    expect(new Set(seqs).size).toBe(25);
    const anchor = {
      bootId: BOOT,
      monoNs: 5n,
      wallMs: 1_764_000_000_000,
      source: "ntp" as const,
      uncertaintyMs: 3,
    };
    expect(() => q.saveAnchor(anchor)).not.toThrow();
    expect(q.anchorsFor(BOOT)).toContainEqual(anchor);
    clock.advance(1000);
    await q.close();
    const again = await openQueue(opts);
    expect(captureOk(again, reading({ priority: 9 }))).toBeGreaterThan(Math.max(...seqs));
    await again.close();
  });
});

describe("Ingest answers 201 only for readings stored or broker-acknowledged", () => {
  let server: IngestServer | undefined;
  afterAll(async () => server?.stop());
  const stamp = { bootId: BOOT, monoNs: 5_000_000_000n, wallMs: 1_764_000_000_000, tq: "ntp" as const };
  async function startWith(over: Partial<QueueOptions>) {
    await server?.stop();
    const dir = join(ws.dir, `ingest${++n}`);
    mkdirSync(dir);
    const q = await openQueue({
      path: join(dir, "queue.db"),
      log: silentLogger(),
      bootId: BOOT,
      minFreeDiskMb: 0,
      ...over,
    });
    server = startIngestServer({
      listen: { host: "127.0.0.1", port: 0 },
      maxBodyBytes: 65536,
      queue: q,
      now: () => stamp,
      defaults: { priority: 5, qos: 1 },
      log: silentLogger(),
    });
    return { q, url: `http://127.0.0.1:${server.port}/v1/readings` };
  }
  const lines = (k: number, over: Record<string, unknown> = {}) =>
    Array.from({ length: k }, (_, i) => JSON.stringify({ stream: "s", values: { i }, ...over })).join("\n");

  it("never answers 201 for a line evicted by a later line of the same request", async () => {
    const { q, url } = await startWith({ maxRows: 3, commitIntervalMs: 60_000 });
    const r = await fetch(url, { method: "POST", headers: NDJSON, body: lines(6) });
    await q.flush();
    if (r.status === 201) {
      const { seqs } = (await r.json()) as { seqs: number[] };
      expect(seqsOnDisk(q.path)).toEqual(expect.arrayContaining(seqs));
    } else {
      expect(r.status).toBe(503);
      expect(seqsOnDisk(q.path)).toEqual([]); // all or nothing
    }
    await q.close();
  });

  it("answers 201 for QoS 0 only once the reading is committed, not when it was written to a socket", async () => {
    const { q, url } = await startWith({ commitIntervalMs: 60_000 });
    // What the publisher does for QoS 0: hand over, and ack at once (mqtt.js calls back at socket write).
    q.onAvailable(() => {
      const batch = q.next(100, new Set());
      q.markInflight(batch.map((r) => r.seq));
      q.ack(batch.filter((r) => r.qos === 0).map((r) => r.seq));
    });
    const r = await fetch(url, { method: "POST", headers: NDJSON, body: lines(1, { qos: 0 }) });
    expect(r.status).toBe(201);
    const { seqs } = (await r.json()) as { seqs: number[] };
    expect(seqsOnDisk(q.path)).toEqual(seqs);
    await q.close();
  });
});

describe("One writer per queue", () => {
  it("a second writer is refused with the holder's pid; read-only tools keep working", async () => {
    const dir = join(ws.dir, "locked");
    mkdirSync(dir);
    const path = join(dir, "queue.db");
    const holder = Bun.spawn(["bun", join(REPO, "test/support/queue-holder.ts"), path], {
      stdout: "pipe",
      stderr: "inherit",
    });
    try {
      const reader = holder.stdout.getReader();
      const { value } = await reader.read();
      expect(new TextDecoder().decode(value)).toContain("ready");
      const error = await openQueue({ path, log: silentLogger(), minFreeDiskMb: 0 }).then(
        async (q) => {
          await q.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(QueueError);
      expect((error as QueueError).code).toBe("locked");
      expect((error as QueueError).message).toContain(`pid ${holder.pid}`);
      const r = openQueueReader(path);
      expect(r.stats().rows).toBe(0);
      r.close();
    } finally {
      holder.kill("SIGKILL");
      await holder.exited;
    }
    // The holder died without closing: the lock goes with it, and the next writer opens.
    const q = await openQueue({ path, log: silentLogger(), minFreeDiskMb: 0 });
    await q.close();
  });

  it("a second `fieldrelay run` exits 73 with one line naming the holder", async () => {
    const dir = join(ws.dir, "locked-run");
    mkdirSync(dir);
    const path = join(dir, "queue.db");
    const config = ws.writeConfig(
      {
        device: { id: "pi-lock" },
        queue: { path },
        ingest: { listen: "" },
        health: { listen: "" },
        rtc: { mode: "none" },
      },
      "lock.toml",
    );
    const holder = Bun.spawn(["bun", join(REPO, "test/support/queue-holder.ts"), path], { stdout: "pipe" });
    try {
      await holder.stdout.getReader().read();
      const { run } = await import("../support/fieldrelay.ts");
      const r = await run("source", ["run", "-c", config]);
      expect(r.code).toBe(73);
      const line = r.stderr.split("\n").filter((l) => l.startsWith("fieldrelay:"));
      expect(line).toHaveLength(1);
      expect(line[0]).toContain(`pid ${holder.pid}`);
      // The read-only tools work beside the writer.
      const stats = await run("source", ["queue", "stats", "--db", path, "--json"]);
      expect(stats.code).toBe(0);
      expect(JSON.parse(stats.stdout)).toMatchObject({ rows: 0 });
    } finally {
      holder.kill("SIGKILL");
      await holder.exited;
    }
  });
});

describe("Lost state is detected, logged and counted; seqs never repeat", () => {
  async function openLogged(path: string) {
    const lines: Array<{ level: string; msg: string }> = [];
    const { createLogger } = await import("../../src/log/index.ts");
    const log = createLogger({ destination: { write: (s: string) => lines.push(JSON.parse(s)) } });
    const q = await openQueue({ path, log, bootId: BOOT, minFreeDiskMb: 0, commitIntervalMs: 0 });
    return { q, lost: lines.filter((l) => l.level === "error" && l.msg.startsWith("queue state lost")) };
  }
  async function filled(name: string): Promise<{ path: string; last: number }> {
    const dir = join(ws.dir, name);
    mkdirSync(dir);
    const path = join(dir, "queue.db");
    const q = await openQueue({
      path,
      log: silentLogger(),
      bootId: BOOT,
      minFreeDiskMb: 0,
      commitIntervalMs: 0,
    });
    let last = 0;
    for (let i = 0; i < 20; i++) last = captureOk(q);
    await q.close();
    return { path, last };
  }

  it("a queue.db truncated to 0 bytes", async () => {
    const { path, last } = await filled("lost-empty");
    writeFileSync(path, "");
    const { q, lost } = await openLogged(path);
    expect(lost).toHaveLength(1);
    expect(lost[0]?.msg).toContain("empty (0 bytes)");
    expect(q.stats().stateLost).toBe(1);
    expect(captureOk(q)).toBeGreaterThan(last);
    await q.close();
  });

  it("a corrupt queue.db and a deleted queue.db.seq: seqs restart far above the old ones, not at 1", async () => {
    const { path, last } = await filled("lost-all");
    writeFileSync(path, "garbage, not sqlite ".repeat(300));
    rmSync(`${path}.seq`);
    const { q, lost } = await openLogged(path);
    expect(lost).toHaveLength(1);
    expect(q.stats().stateLost).toBe(1);
    expect(captureOk(q)).toBeGreaterThan(Math.max(last, 1_700_000_000_000));
    await q.close();
  });

  it("a clean start of a new queue is not reported as lost", async () => {
    const dir = join(ws.dir, "lost-none");
    mkdirSync(dir);
    const { q, lost } = await openLogged(join(dir, "queue.db"));
    expect(lost).toEqual([]);
    expect(q.stats().stateLost).toBe(0);
    expect(captureOk(q)).toBe(1);
    await q.close();
  });
});

describe("queue.path", () => {
  it("a directory is refused with one line, and never renamed", async () => {
    const dir = join(ws.dir, "is-a-dir");
    mkdirSync(join(dir, "queue.db"), { recursive: true });
    writeFileSync(join(dir, "queue.db", "inner"), "x");
    const error = await openQueue({
      path: join(dir, "queue.db"),
      log: silentLogger(),
      minFreeDiskMb: 0,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QueueError);
    expect((error as QueueError).message).toContain("is a directory");
    expect(readdirSync(dir)).toEqual(["queue.db"]);
  });
});

describe("Quarantine", () => {
  it("a second corrupt database in the same boot gets its own name; neither is overwritten", async () => {
    const dir = join(ws.dir, "quarantine");
    mkdirSync(dir);
    const path = join(dir, "queue.db");
    for (const text of ["first corrupt ", "second corrupt "]) {
      writeFileSync(path, text.repeat(300));
      const q = await openQueue({ path, log: silentLogger(), bootId: BOOT, minFreeDiskMb: 0 });
      await q.close();
    }
    const moved = readdirSync(dir).filter(
      (f) => f.includes(".corrupt-") && !f.endsWith("-wal") && !f.endsWith("-shm"),
    );
    expect(moved).toHaveLength(2);
    const texts = moved.map((f) => readFileSync(join(dir, f), "utf8").slice(0, 6)).sort();
    expect(texts).toEqual(["first ", "second"]);
  });
});

describe("queue.path a directory, from the CLI", () => {
  it("check-config and run name it (exit 78, a config error) and rename nothing", async () => {
    const { run } = await import("../support/fieldrelay.ts");
    const dir = join(ws.dir, "cli-dir", "queue.db");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "keep"), "x");
    const config = ws.writeConfig(
      {
        device: { id: "pi-dir" },
        queue: { path: dir },
        ingest: { listen: "" },
        health: { listen: "" },
        rtc: { mode: "none" },
      },
      "dir.toml",
    );
    const check = await run("source", ["check-config", "-c", config]);
    expect(check.code).toBe(78);
    expect(check.stderr).toMatch(/queue\.path.*is a directory/);
    // run loads the same config: refused before the queue is touched. (Should the directory
    // appear after the config was read, opening the queue refuses it with exit 73: see above.)
    const r = await run("source", ["run", "-c", config]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/queue\.path.*is a directory/);
    expect(readdirSync(join(ws.dir, "cli-dir"))).toEqual(["queue.db"]);
  });
});

describe.skipIf(skip)("I/O errors (ext4 shut down: EIO)", () => {
  it("a body is stored whole or refused whole, answered in bounded time; nothing of a refused body is published", async () => {
    const { LoopExt4 } = await import("../support/ext4.ts");
    const fsx = LoopExt4.mount(join(ws.dir, "eio.img"), join(ws.dir, "eio"), 32);
    let server: IngestServer | undefined;
    try {
      const path = join(fsx.dir, "queue.db");
      // A small seq block, so the big body below crosses a block boundary (a side-file write).
      const q = await openQueue({
        path,
        log: silentLogger(),
        bootId: BOOT,
        minFreeDiskMb: 0,
        commitIntervalMs: 1000,
        seqBlock: 100,
      });
      // A publisher while the broker is up (takes, marks inflight, acked at once); it goes
      // offline at the fault, so what comes after can only be captured by a commit.
      const published = new Set<number>();
      let online = true;
      q.onAvailable(() => {
        if (!online) return;
        const got = q.next(10_000, published).map((r) => r.seq);
        q.markInflight(got);
        for (const s of got) published.add(s);
        q.ack(got);
      });
      server = startIngestServer({
        listen: { host: "127.0.0.1", port: 0 },
        maxBodyBytes: 1 << 20,
        queue: q,
        now: () => ({ bootId: BOOT, monoNs: 5n, wallMs: 1_764_000_000_000, tq: "ntp" }),
        defaults: { priority: 5, qos: 1 },
        log: silentLogger(),
      });
      const url = `http://127.0.0.1:${server.port}/v1/readings`;
      const body = (k: number, tag: string) =>
        Array.from({ length: k }, (_, i) => JSON.stringify({ stream: "s", values: { tag, i } })).join("\n");
      const ok = await fetch(url, { method: "POST", headers: NDJSON, body: body(50, "before") });
      expect(ok.status).toBe(201);
      const stored = ((await ok.json()) as { seqs: number[] }).seqs;

      online = false;
      fsx.shutdown();
      for (const k of [1000, 1, 30]) {
        const r = await fetch(url, {
          method: "POST",
          headers: NDJSON,
          body: body(k, "after"),
          signal: AbortSignal.timeout(20_000),
        });
        expect(r.status).toBe(503);
        expect(((await r.json()) as { error: string }).error).toMatch(/none was stored/);
      }
      await new Promise((r) => setTimeout(r, 50));
      // Everything published was acknowledged before the fault; nothing of the refused bodies is
      // left to publish.
      expect([...published].every((s) => stored.includes(s))).toBe(true);
      expect(q.next(10_000, new Set())).toEqual([]);
      // What /health reports (SQLite calls the unreadable file SQLITE_IOERR or SQLITE_CORRUPT).
      expect(q.stats().lastError ?? "").toMatch(/SQLITE_|EIO|I\/O/);
      await q.close().catch(() => {});
    } finally {
      await server?.stop();
      fsx.unmount();
    }
  });
});

describe.skipIf(skip)("A card that fails (ext4 shut down: EIO, then remounted read-only)", () => {
  it("opening on it names the file, device and mount, and never moves queue.db aside", async () => {
    const { LoopExt4 } = await import("../support/ext4.ts");
    const image = join(ws.dir, "dying.img");
    const fsx = LoopExt4.mount(image, join(ws.dir, "dying"), 32);
    const again = join(ws.dir, "dying-again");
    try {
      const path = join(fsx.dir, "queue.db");
      const q = await openQueue({ path, log: silentLogger(), bootId: BOOT, minFreeDiskMb: 0 });
      for (let i = 0; i < 10; i++) captureOk(q);
      await q.close();
      writeFileSync(`${path}-wal`, "x"); // an unclean shutdown: the open runs quick_check
      fsx.shutdown();
      const error = await openQueue({ path, log: silentLogger(), bootId: BOOT, minFreeDiskMb: 0 }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(QueueError);
      expect((error as QueueError).code).toBe("storage-fault");
      expect((error as QueueError).message).toMatch(
        /^storage fault on .*queue\.db \(\/dev\/loop\d+ \d+:\d+ ext4 on /,
      );
      // The file system, remounted read-only (as after ext4 aborts its journal): still no
      // quarantine, and the same kind of message.
      Bun.spawnSync(["umount", "-l", fsx.dir]);
      mkdirSync(again, { recursive: true });
      expect(Bun.spawnSync(["mount", "-o", "loop,ro,noload", image, again]).exitCode).toBe(0);
      const ro = await openQueue({
        path: join(again, "queue.db"),
        log: silentLogger(),
        bootId: BOOT,
        minFreeDiskMb: 0,
      }).catch((e: unknown) => e);
      expect((ro as QueueError).code).toBe("storage-fault");
      expect((ro as QueueError).message).toMatch(/mounted read-only now/);
      expect(readdirSync(again).filter((f) => f.includes("corrupt"))).toEqual([]);
    } finally {
      Bun.spawnSync(["umount", "-l", again]);
      fsx.unmount();
    }
  });
});

describe("Start-up integrity check", () => {
  it("skips quick_check after a clean shutdown, yet a file found damaged when read is moved aside, not crash-looped on", async () => {
    const dir = join(ws.dir, "quick-check");
    mkdirSync(dir);
    const path = join(dir, "queue.db");
    const q = await openQueue({
      path,
      log: silentLogger(),
      bootId: BOOT,
      minFreeDiskMb: 0,
      commitIntervalMs: 60_000,
    });
    let last = 0;
    for (let i = 0; i < 3000; i++) last = captureOk(q, reading({ values: blob("q") }));
    await q.close(); // clean: the -wal is gone, so the next start does not read the whole file first
    expect(readdirSync(dir)).not.toContain("queue.db-wal");
    const bytes = readFileSync(path);
    bytes.fill(0xff, 200 * 1024, 201 * 1024); // a page deep inside; header and schema intact
    writeFileSync(path, bytes);
    // Opening reads the stored per-priority counts, not every row: the damage is met when the
    // rows are read (here: the backlog handed out), which asks the next start for a full check.
    const opened = await openQueue({ path, log: silentLogger(), bootId: BOOT, minFreeDiskMb: 0 });
    const seen = new Set<number>();
    for (let batch = opened.next(500, seen); batch.length > 0; batch = opened.next(500, seen))
      for (const r of batch) seen.add(r.seq);
    expect(seen.size).toBeLessThan(3000); // rows behind the damaged page cannot be read
    expect(readdirSync(dir)).toContain("queue.db.check");
    await opened.close();
    const again = await openQueue({ path, log: silentLogger(), bootId: BOOT, minFreeDiskMb: 0 });
    expect(readdirSync(dir).filter((f) => /^queue\.db\.corrupt-[0-9a-f]{8}-1$/.test(f))).toHaveLength(1);
    expect(readdirSync(dir)).not.toContain("queue.db.check");
    expect(captureOk(again)).toBeGreaterThan(last);
    await again.close();
  });
});
