import { Database } from "bun:sqlite";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log/index.ts";
import { openQueue } from "../../src/queue/index.ts";
import { Workspace } from "../support/fieldrelay.ts";

const ws = new Workspace("fr-queue-crash-");
afterAll(() => ws.cleanup());
const CHILD = fileURLToPath(new URL("../support/queue-child.ts", import.meta.url));

describe("Queue after kill -9", () => {
  it("keeps every reading reported as committed, and never reuses a seq", async () => {
    const path = join(ws.dataDir, "queue.db");
    const child = Bun.spawn([process.execPath, CHILD, path], { stdout: "pipe", stderr: "inherit" });
    const committed: number[] = [];
    const reader = child.stdout.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (committed.length < 300) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
      const lines = text.split("\n");
      text = lines.pop() ?? "";
      for (const l of lines) if (l.startsWith("committed ")) committed.push(Number(l.slice(10)));
    }
    child.kill("SIGKILL");
    await child.exited;
    expect(child.signalCode).toBe("SIGKILL");
    // Anything printed after our last read is committed too; collect it.
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    for (const l of text.split("\n")) if (l.startsWith("committed ")) committed.push(Number(l.slice(10)));
    expect(committed.length).toBeGreaterThanOrEqual(300);

    const db = new Database(path, { readonly: true });
    const onDisk = new Set(
      (db.query("SELECT seq FROM readings").all() as Array<{ seq: number }>).map((r) => r.seq),
    );
    db.close();
    const missing = committed.filter((s) => !onDisk.has(s));
    expect(missing).toEqual([]);

    const q = await openQueue({ path, log: silentLogger(), commitIntervalMs: 0 });
    const res = q.capture({
      bootId: q.bootId,
      monoNs: 1n,
      wallMs: 0,
      tq: "unsynced",
      stream: "after",
      priority: 5,
      qos: 1,
      values: {},
    });
    expect(res.ok && res.seq).toBeGreaterThan(Math.max(...onDisk));
    await q.close();
  });
});
