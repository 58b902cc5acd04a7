/**
 * Rollback keeps the queue: a file written by a newer build opens in an older one when the newer
 * build's meta.schema_compat says the older one can use it, and is refused with what to do
 * (never renamed or changed) when it cannot. Simulated here by editing a file this build wrote the
 * way a newer build would have left it: a higher user_version, a table this build does not know.
 */
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createLogger, silentLogger } from "../../src/log/index.ts";
import { MIGRATIONS, openQueue, QueueError } from "../../src/queue/index.ts";
import { run, Workspace } from "../support/fieldrelay.ts";
import { reading } from "../support/queue-fakes.ts";

const ws = new Workspace("fr-qcompat-");
afterAll(() => ws.cleanup());
let n = 0;

/** A queue file with two readings, then edited as a build at schema `version` with floor `compat` would leave it. */
async function fileFromNewerBuild(version: number, compat: number): Promise<string> {
  const dir = join(ws.dir, `q${++n}`);
  mkdirSync(dir);
  const path = join(dir, "queue.db");
  const q = await openQueue({ path, log: silentLogger() });
  q.capture(reading({ values: { n: 1 } }));
  q.capture(reading({ values: { n: 2 } }));
  await q.close();
  const db = new Database(path);
  db.exec(`CREATE TABLE future_feature (x INTEGER); PRAGMA user_version = ${version}`);
  db.query("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_compat', ?)").run(compat);
  db.close();
  return path;
}

const meta = (path: string) => {
  const db = new Database(path, { readonly: true });
  try {
    return {
      version: (db.query("PRAGMA user_version").get() as { user_version: number }).user_version,
      compat: (
        db.query("SELECT value FROM meta WHERE key = 'schema_compat'").get() as { value: number } | null
      )?.value,
      rows: (db.query("SELECT count(*) AS n FROM readings").get() as { n: number }).n,
    };
  } finally {
    db.close();
  }
};

describe("queue schema across a downgrade", () => {
  it("a file this build writes records that schema 1 code can use it (every migration so far only adds)", async () => {
    const path = join(ws.dir, "fresh.db");
    const q = await openQueue({ path, log: silentLogger() });
    await q.close();
    expect(meta(path)).toEqual({ version: MIGRATIONS.length, compat: 1, rows: 0 });
  });

  it("opens a newer build's file whose floor it meets: readings kept, new ones captured and acked, a warning, the version left as it was", async () => {
    const newer = MIGRATIONS.length + 2;
    const path = await fileFromNewerBuild(newer, MIGRATIONS.length);
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger({
      level: "warn",
      destination: { write: (s: string) => lines.push(JSON.parse(s)) },
    });
    const q = await openQueue({ path, log });
    expect(q.stats().rows).toBe(2);
    expect(q.capture(reading({ values: { n: 3 } })).ok).toBe(true);
    const first = q.next(10, new Set());
    expect(first.map((r) => r.values.n)).toEqual([1, 2, 3]);
    q.markInflight(first.map((r) => r.seq));
    q.ack([first[0]!.seq]);
    await q.close();
    expect(
      lines.some((l) => l.schemaVersion === newer && /written by a newer fieldrelay/.test(String(l.msg))),
    ).toBe(true);
    expect(meta(path)).toEqual({ version: newer, compat: MIGRATIONS.length, rows: 2 });
  });

  it("refuses a newer build's file whose floor is above this build, naming what to install, and leaves it untouched", async () => {
    const path = await fileFromNewerBuild(MIGRATIONS.length + 1, MIGRATIONS.length + 1);
    const before = meta(path);
    const error = await openQueue({ path, log: silentLogger() }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(QueueError);
    expect((error as QueueError).code).toBe("schema-too-new");
    expect(meta(path)).toEqual(before);
  });

  it("`fieldrelay run` on such a file exits 73 with one line saying which build to install", async () => {
    const path = await fileFromNewerBuild(MIGRATIONS.length + 1, MIGRATIONS.length + 1);
    const config = ws.writeConfig(
      {
        device: { id: "pi-compat" },
        queue: { path },
        ingest: { listen: "" },
        health: { listen: "" },
        rtc: { mode: "none" },
      },
      `compat${n}.toml`,
    );
    const r = await run("source", ["run", "-c", config]);
    expect(r.code).toBe(73);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `queue schema version ${MIGRATIONS.length + 1} is newer than this fieldrelay understands \\(${MIGRATIONS.length}\\).* — a newer fieldrelay changed the queue's format; install a build that knows schema ${MIGRATIONS.length + 1} or later`,
      ),
    );
    expect(meta(path).rows).toBe(2);
  });
});
