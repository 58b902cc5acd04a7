import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log/index.ts";
import { openDeadLetterFile } from "../../src/queue/dead-letter.ts";
import { MIGRATIONS, openQueue } from "../../src/queue/index.ts";
import { reading } from "../support/memory-queue.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmpPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "fr-strikes-q-"));
  dirs.push(dir);
  return join(dir, "queue.db");
}

describe("poison strikes kept in queue.db (#12 hardening)", () => {
  it("migrates a version-1 file (its readings kept) and keeps strikes across a reopen, for queued seqs only", async () => {
    const path = tmpPath();
    // A queue file as the build before this one left it: schema version 1, one reading queued.
    {
      const q = await openQueue({ path, log: silentLogger() });
      expect(q.capture(reading({ values: { n: 1 } })).ok).toBe(true);
      await q.close();
      const db = new Database(path);
      db.exec("DROP TABLE poison_strikes; ALTER TABLE anchors DROP COLUMN ppm; PRAGMA user_version = 1");
      db.close();
    }
    const q = await openQueue({ path, log: silentLogger() });
    const db = new Database(path, { readonly: true });
    expect((db.query("PRAGMA user_version").get() as { user_version: number }).user_version).toBe(
      MIGRATIONS.length,
    );
    db.close();
    expect(q.stats().rows).toBe(1);
    expect(q.strikes()).toEqual(new Map());
    const seq = q.next(1, new Set())[0]!.seq;
    const gone = q.capture(reading({ values: { n: 2 } }));
    if (!gone.ok) throw new Error("capture failed");
    q.saveStrikes(
      new Map([
        [seq, 2],
        [gone.seq, 1],
      ]),
    );
    q.ack([gone.seq]);
    await q.close();
    const again = await openQueue({ path, log: silentLogger() });
    // The acked seq's strike is ignored: it left the queue.
    expect(again.strikes()).toEqual(new Map([[seq, 2]]));
    again.saveStrikes(new Map());
    expect(again.strikes()).toEqual(new Map());
    await again.close();
  });

  it("a dead letter requeued by the operator starts without the strikes that put it there", async () => {
    const path = tmpPath();
    const q = await openQueue({ path, log: silentLogger() });
    const res = q.capture(reading({ values: { n: 1 } }));
    if (!res.ok) throw new Error("capture failed");
    await q.flush();
    q.saveStrikes(new Map([[res.seq, 3]]));
    q.deadLetter([res.seq], "the broker dropped the connection 3 times");
    await q.close();
    const file = openDeadLetterFile(path, true);
    expect(file.requeue(undefined)).toEqual([res.seq]);
    file.close();
    const again = await openQueue({ path, log: silentLogger() });
    expect(again.stats().rows).toBe(1);
    expect(again.strikes()).toEqual(new Map());
    await again.close();
  });
});
