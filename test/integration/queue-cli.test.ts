import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log/index.ts";
import { openQueue, type SqliteQueue } from "../../src/queue/index.ts";
import { run, Workspace } from "../support/fieldrelay.ts";
import { reading } from "../support/queue-fakes.ts";

const ws = new Workspace("fr-queue-cli-");
const config = ws.writeConfig({ device: { id: "pi-1" }, queue: { path: ws.queuePath } });
let q: SqliteQueue;
let writer: ReturnType<typeof setInterval>;
let firstSeq = 0;

beforeAll(async () => {
  // Another connection holds the database open and keeps writing, as `fieldrelay run` would.
  q = await openQueue({ path: ws.queuePath, log: silentLogger(), commitIntervalMs: 20 });
  for (let i = 0; i < 30; i++) {
    const r = q.capture(reading({ priority: i < 10 ? 8 : 3, stream: i < 10 ? "alarm" : "env" }));
    if (r.ok && firstSeq === 0) firstSeq = r.seq;
  }
  await q.flush();
  q.markInflight([firstSeq + 20]);
  await q.flush();
  writer = setInterval(() => q.capture(reading({ priority: 1, stream: "live" })), 5);
});

afterAll(async () => {
  clearInterval(writer);
  await q.close();
  ws.cleanup();
});

describe("fieldrelay queue (while another process writes)", () => {
  it("stats prints rows, bytes, rows by priority, oldest and next seq, inflight", async () => {
    const r = await run("source", ["queue", "stats", "--config", config]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^rows\s+\d+$/m);
    expect(r.stdout).toMatch(/^bytes\s+\d+$/m);
    expect(r.stdout).toMatch(new RegExp(`^oldest seq\\s+${firstSeq}$`, "m"));
    expect(r.stdout).toMatch(/^next seq\s+\d+$/m);
    expect(r.stdout).toMatch(/^inflight\s+1$/m);
    expect(r.stdout).toMatch(/^\s+8\s+10 rows/m);
    expect(r.stdout).toMatch(/^\s+3\s+20 rows/m);
    const j = await run("source", ["queue", "stats", "--db", ws.queuePath, "--json"]);
    expect(j.code).toBe(0);
    const s = JSON.parse(j.stdout);
    expect(s.rows).toBeGreaterThanOrEqual(30);
    expect(s.nextSeq).toBeGreaterThan(firstSeq + 29);
  });

  it("peek -n prints the next readings in send order: inflight first, then priority DESC, seq ASC", async () => {
    const r = await run("source", ["queue", "peek", "-n", "3", "--db", ws.queuePath]);
    expect(r.code).toBe(0);
    const rows = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(rows.map((x) => x.seq)).toEqual([firstSeq + 20, firstSeq, firstSeq + 1]);
    expect(rows[0]).toMatchObject({ inflight: true, stream: "env", priority: 3 });
    expect(rows[1]).toMatchObject({ stream: "alarm", monoNs: expect.stringMatching(/^\d+$/) });
  });

  it("export --format ndjson prints every stored reading in seq order", async () => {
    const r = await run("source", ["queue", "export", "--format", "ndjson", "--config", config]);
    expect(r.code).toBe(0);
    const seqs = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).seq as number);
    expect(seqs.length).toBeGreaterThanOrEqual(30);
    expect(seqs.slice(0, 30)).toEqual(Array.from({ length: 30 }, (_, i) => firstSeq + i));
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
  });

  it("names a missing database and exits 66 (EX_NOINPUT)", async () => {
    const missing = join(ws.dir, "absent", "queue.db");
    const r = await run("source", ["queue", "stats", "--db", missing]);
    expect(r.code).toBe(66);
    expect(r.stderr.trim().split("\n")).toEqual([
      `fieldrelay: queue database ${missing} does not exist — check queue.path in the config or pass --db PATH`,
    ]);
  });
});

describe("fieldrelay queue (no writer running)", () => {
  it("leaves the -wal/-shm it creates owned by the database's owner, so the service can still open it", async () => {
    const dir = join(ws.dir, "owned");
    const { mkdirSync, chownSync, statSync } = await import("node:fs");
    mkdirSync(dir);
    const path = join(dir, "queue.db");
    const own = await openQueue({ path, log: silentLogger(), commitIntervalMs: 0 });
    own.capture(reading());
    await own.close();
    if (process.getuid?.() !== 0) return; // only root creates files owned by someone else
    chownSync(path, 65534, 65534);
    const r = await run("source", ["queue", "stats", "--db", path]);
    expect(r.code).toBe(0);
    for (const f of [`${path}-wal`, `${path}-shm`]) expect(statSync(f).uid).toBe(65534);
  });
});

describe("fieldrelay queue on a queue whose schema never committed (a crash in the service's first moments)", () => {
  it("stats and export treat it as an empty queue not initialised yet, not an SQL error", async () => {
    const { Database } = await import("bun:sqlite");
    const path = join(ws.dir, "fresh.db");
    const db = new Database(path, { create: true });
    db.exec("PRAGMA page_size = 1024");
    db.exec("PRAGMA journal_mode = WAL"); // what the service's open writes before the schema
    db.close();
    const exported = await run("source", ["queue", "export", "--db", path]);
    expect(exported.stderr).not.toMatch(/no such table/);
    expect(exported.code).toBe(0);
    expect(exported.stdout).toBe("");
    const stats = await run("source", ["queue", "stats", "--db", path]);
    expect(stats.code).toBe(0);
    expect(stats.stdout).toMatch(/not initialised yet/);
    expect(stats.stdout).toMatch(/^rows\s+0$/m);
  });
});
