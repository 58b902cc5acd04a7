/**
 * Issue #12, item 8: logging can never stop capture. The compiled binary with stdout on /dev/full
 * and on a pipe nobody reads keeps answering ingest and health; long error output arrives whole
 * through a pipe; operator errors are one line; nothing but JSON reaches stdout.
 */
import { closeSync, constants, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { binaryMissing, command, type Flavor, REPO, run, spawn, Workspace } from "../support/fieldrelay.ts";
import { freePort, waitForPort } from "../support/ports.ts";

const flavor: Flavor = "x64";
const skip = binaryMissing(flavor);

const BAD = JSON.stringify({ stream: "env", values: {} }); // 400 and a "rejected ingest request" warning
const GOOD = JSON.stringify({ stream: "env", values: { v: 1 } });
const postTo = (port: number, body: string) =>
  fetch(`http://127.0.0.1:${port}/v1/readings`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
    signal: AbortSignal.timeout(10_000),
  });

describe.skipIf(skip)("logging never stops capture", () => {
  const ws = new Workspace("fr-log-");
  const procs: Array<{ kill(signal?: number | NodeJS.Signals): void; exitCode: number | null }> = [];
  afterAll(() => {
    for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL"); // a failed test leaves nothing running
    ws.cleanup();
  });

  async function configWithPorts() {
    const ingest = await freePort();
    const health = await freePort();
    const path = ws.writeConfig({
      device: { id: "pi-log" },
      mqtt: { url: `mqtt://127.0.0.1:${await freePort()}`, min_backoff_s: 0.1, max_backoff_s: 1 },
      queue: { path: ws.queuePath, commit_interval_ms: 20 },
      ingest: { listen: `127.0.0.1:${ingest}` },
      health: { listen: `127.0.0.1:${health}` },
      rtc: { mode: "none" },
      log: { level: "debug" },
    });
    return { path, ingest, health };
  }

  async function exercise(ingest: number, health: number): Promise<void> {
    for (let i = 0; i < 1500; i++) expect((await postTo(ingest, BAD)).status).toBe(400);
    for (let i = 0; i < 20; i++) expect((await postTo(ingest, GOOD)).status).toBe(201);
    const h = await fetch(`http://127.0.0.1:${health}/health`, { signal: AbortSignal.timeout(10_000) });
    expect(h.status).toBe(200);
  }

  it("keeps capturing with stdout on /dev/full (writes fail with ENOSPC)", async () => {
    const { path, ingest, health } = await configWithPorts();
    const full = openSync("/dev/full", "w");
    const proc = Bun.spawn([...command(flavor), "run", "-c", path], {
      cwd: REPO,
      stdin: "ignore",
      stdout: full,
      stderr: "pipe",
    });
    procs.push(proc);
    closeSync(full);
    await waitForPort(ingest, 30_000);
    await exercise(ingest, health);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  });

  /** A kernel pipe (a FIFO) with a reader that reads nothing until told to: 64 KiB fill it. */
  function stalledPipe(name: string) {
    const fifo = join(ws.dir, name);
    Bun.spawnSync(["mkfifo", fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, "w");
    return {
      writer,
      /** Read everything until the writer side is closed by the child's exit. */
      async drain(): Promise<string> {
        closeSync(writer);
        const chunks: Buffer[] = [];
        const buf = Buffer.alloc(65536);
        for (;;) {
          let n: number;
          try {
            n = readSync(reader, buf);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code === "EAGAIN") {
              await Bun.sleep(5);
              continue;
            }
            throw error;
          }
          if (n === 0) break;
          chunks.push(Buffer.from(buf.subarray(0, n)));
        }
        closeSync(reader);
        return Buffer.concat(chunks).toString();
      },
    };
  }

  it("keeps capturing with stdout on a pipe nobody reads", async () => {
    const { path, ingest, health } = await configWithPorts();
    const pipe = stalledPipe("stdout.fifo");
    const proc = Bun.spawn([...command(flavor), "run", "-c", path], {
      cwd: REPO,
      stdin: "ignore",
      stdout: pipe.writer,
      stderr: "ignore",
    });
    procs.push(proc);
    await waitForPort(ingest, 30_000);
    await exercise(ingest, health);
    proc.kill("SIGKILL");
    await proc.exited;
    await pipe.drain();
  });

  it("rate-limits a repeated warning and says how many were suppressed", async () => {
    const { path, ingest } = await configWithPorts();
    const proc = spawn(flavor, ["run", "-c", path]);
    procs.push(proc.proc);
    await proc.waitForLog((l) => l.msg === "fieldrelay ready");
    for (let i = 0; i < 200; i++) await postTo(ingest, BAD);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    const rejected = proc.logs.filter((l) => l.msg === "rejected ingest request");
    expect(rejected.length).toBeGreaterThan(0);
    expect(rejected.length).toBeLessThanOrEqual(10);
    // Every stdout line is JSON; stderr has no runtime deprecation warning.
    for (const line of proc.stdout.trim().split("\n")) expect(() => JSON.parse(line)).not.toThrow();
    expect(proc.stderr).not.toMatch(/DeprecationWarning|DEP0169/);
  });

  it("writes long error output whole through a pipe its reader empties late", async () => {
    const keys = Array.from({ length: 3000 }, (_, i) => `unknown_key_number_${i} = 1`).join("\n");
    const path = ws.writeConfig(`[device]\nid = "pi-log"\n${keys}\n`, "many-problems.toml");
    const pipe = stalledPipe("stderr.fifo");
    const proc = Bun.spawn([...command(flavor), "check-config", "-c", path], {
      cwd: REPO,
      stdin: "ignore",
      stdout: "ignore",
      stderr: pipe.writer,
    });
    await Bun.sleep(1000); // the pipe is full and the process wants to exit
    const stderr = await pipe.drain();
    expect(await proc.exited).toBe(78);
    expect(stderr.length).toBeGreaterThan(128 * 1024);
    expect(stderr).toContain("unknown_key_number_2999");
  });

  it("reports an operator error (port in use) in one line that names the key, without a stack", async () => {
    const { path, ingest } = await configWithPorts();
    const holder = Bun.serve({ hostname: "127.0.0.1", port: ingest, fetch: () => new Response() });
    try {
      const r = await run(flavor, ["run", "-c", path]);
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(/ingest\.listen/);
      const fatal = r.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.level === "fatal");
      expect(fatal?.msg).toMatch(/ingest\.listen/);
      expect(JSON.stringify(fatal)).not.toMatch(/\\n\s+at /);
    } finally {
      holder.stop(true);
    }
  });
});
