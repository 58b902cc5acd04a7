/**
 * Per-priority counts persisted in queue.db (priority-counts.ts): opening a queue reads them
 * instead of counting the backlog, and every writer keeps them exact.
 */
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/log/index.ts";
import { openQueue } from "../../src/queue/index.ts";
import { migrate } from "../../src/queue/schema.ts";
import { BOOT, reading } from "../support/queue-fakes.ts";

const dir = mkdtempSync(join(tmpdir(), "fr-qcounts-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function recorder() {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({
    level: "debug",
    destination: { write: (l: string) => lines.push(JSON.parse(l)) },
  });
  return { log, lines };
}

function groupBy(path: string): Record<number, number> {
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

const open = (path: string, log = recorder().log) =>
  openQueue({ path, log, bootId: BOOT, minFreeDiskMb: 0, maxRows: 100, commitIntervalMs: 60_000 });

describe("Per-priority counts in queue.db", () => {
  it("are read at open, not counted, and stay exact through commits, acks, evictions and other writers", async () => {
    const path = join(dir, "a.db");
    const q = await open(path);
    for (let i = 0; i < 60; i++) q.capture(reading({ priority: 1 + (i % 3) }));
    await q.flush();
    const sent = q.next(5, new Set()).map((r) => r.seq);
    q.markInflight(sent);
    q.ack(sent); // deleted by the next commit
    for (let i = 0; i < 60; i++) q.capture(reading({ priority: 7 })); // over max_rows = 100: evicts
    await q.flush();
    expect(q.stats().evictedByPriority[1] ?? 0).toBeGreaterThan(0);
    await q.close();
    // Another writer (as `queue dead-letter drop` is) deletes rows with plain SQL.
    const db = new Database(path);
    db.exec("DELETE FROM readings WHERE seq IN (SELECT seq FROM readings WHERE priority = 2 LIMIT 3)");
    db.close();
    const { log, lines } = recorder();
    const again = await open(path, log);
    const expected = groupBy(path);
    expect(again.stats().rowsByPriority).toEqual(expected);
    expect(again.stats().rows).toBe(Object.values(expected).reduce((a, b) => a + b, 0));
    expect(lines.some((l) => String(l.msg).includes("per-priority counts"))).toBe(false); // read, not rebuilt
    await again.close();
  });

  it("are built once, at the first open of a queue made before them", async () => {
    const path = join(dir, "old.db");
    const db = new Database(path, { create: true, strict: true });
    db.exec("PRAGMA page_size = 1024");
    db.exec("PRAGMA journal_mode = WAL");
    migrate(db);
    db.query("INSERT INTO boots(id, boot_id) VALUES (1, ?)").run(BOOT);
    const ins = db.query(
      "INSERT INTO readings(seq, stream, priority, qos, boot, mono_ns, wall_ms, tq, vals, anomaly, bytes, inflight) VALUES (?, 'env', ?, 1, 1, ?, 0, 'ntp', '{}', 0, 100, 0)",
    );
    for (let i = 1; i <= 50; i++) ins.run(i, 1 + (i % 4), i);
    db.query("INSERT INTO meta(key, value) VALUES ('seq_reserved', 50)").run();
    db.close();
    const first = recorder();
    const q = await open(path, first.log);
    expect(q.stats().rowsByPriority).toEqual(groupBy(path));
    expect(q.stats().bytes).toBe(5000);
    expect(first.lines.some((l) => String(l.msg).includes("(re)built"))).toBe(true);
    await q.close();
    const second = recorder();
    const q2 = await open(path, second.log);
    expect(q2.stats().rowsByPriority).toEqual(groupBy(path));
    expect(second.lines.some((l) => String(l.msg).includes("per-priority counts"))).toBe(false);
    await q2.close();
  });
});
