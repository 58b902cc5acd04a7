/**
 * Run fieldrelay the way a user meets it: as a process. "source" runs src/main.ts with the local
 * Bun; "x64" runs dist/fieldrelay-linux-x64; "arm64" runs dist/fieldrelay-linux-arm64 under
 * qemu-aarch64-static. A Workspace is a temp dir with a config and a data dir.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Subprocess } from "bun";
import { stringify } from "smol-toml";

export type Flavor = "source" | "x64" | "arm64";

export const REPO = resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const DIST = join(REPO, "dist");

export function command(flavor: Flavor): string[] {
  switch (flavor) {
    case "source":
      return [process.execPath, join(REPO, "src/main.ts")];
    case "x64":
      return [join(DIST, "fieldrelay-linux-x64")];
    case "arm64":
      return ["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu", join(DIST, "fieldrelay-linux-arm64")];
  }
}

/** Why a flavor cannot run here (binary not built), or undefined. Under CI it must be built. */
export function binaryMissing(flavor: Flavor): string | undefined {
  if (flavor === "source") return undefined;
  const file = join(DIST, `fieldrelay-linux-${flavor}`);
  if (existsSync(file)) return undefined;
  const reason = `${file} is not built (run npm run build)`;
  if (process.env.CI === "true") throw new Error(reason);
  return reason;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  timeoutMs?: number;
  stdin?: string;
}

function childEnv(extra: RunOptions["env"]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("FIELDRELAY_") && k !== "NOTIFY_SOCKET" && k !== "WATCHDOG_USEC")
      env[k] = v;
  }
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Run to completion and collect output. */
export async function run(flavor: Flavor, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const proc = Bun.spawn([...command(flavor), ...args], {
    env: childEnv(options.env),
    cwd: options.cwd ?? REPO,
    stdin: options.stdin === undefined ? "ignore" : new TextEncoder().encode(options.stdin),
    stdout: "pipe",
    stderr: "pipe",
    timeout: options.timeoutMs ?? 60_000,
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

export type LogLine = Record<string, unknown> & { msg?: string; level?: string; component?: string };

/** A long-running fieldrelay (e.g. `run`) whose JSON log lines are collected as they arrive. */
export class RunningFieldrelay {
  readonly logs: LogLine[] = [];
  stdout = "";
  stderr = "";
  private waiters: Array<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];

  constructor(readonly proc: Subprocess<"ignore", "pipe", "pipe">) {
    void this.pump(proc.stdout, (text) => {
      this.stdout += text;
      this.collect();
    });
    void this.pump(proc.stderr, (text) => {
      this.stderr += text;
    });
  }

  private async pump(stream: ReadableStream<Uint8Array>, sink: (t: string) => void): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of stream) sink(decoder.decode(chunk, { stream: true }));
  }

  private collected = 0;
  private collect(): void {
    const lines = this.stdout.split("\n");
    for (let i = this.collected; i < lines.length - 1; i++) {
      const raw = lines[i]!;
      let line: LogLine;
      try {
        line = JSON.parse(raw) as LogLine;
      } catch {
        continue;
      }
      this.logs.push(line);
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(line)) return true;
        w.resolve(line);
        return false;
      });
    }
    this.collected = lines.length - 1;
  }

  /** Resolve with the first log line (past or future) that matches. */
  waitForLog(match: (l: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> {
    const seen = this.logs.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const tail = () => `stdout:\n${this.stdout.slice(-4000)}\nstderr:\n${this.stderr.slice(-2000)}`;
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        reject(new Error(`no matching log line after ${timeoutMs} ms; ${tail()}`));
      }, timeoutMs);
      // A process that exits will never log the line: fail now, with its output, not at the timeout.
      void this.proc.exited.then(async (code) => {
        await Bun.sleep(50); // let the pumps deliver the last lines
        if (done || this.logs.some(match)) return;
        done = true;
        clearTimeout(timer);
        reject(new Error(`process exited (${code}) before the log line; ${tail()}`));
      });
      this.waiters.push({
        match,
        resolve: (l) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  kill(signal: NodeJS.Signals | number = "SIGTERM"): void {
    this.proc.kill(signal);
  }

  get exited(): Promise<number> {
    return this.proc.exited;
  }
}

export function spawn(flavor: Flavor, args: string[], options: RunOptions = {}): RunningFieldrelay {
  const proc = Bun.spawn([...command(flavor), ...args], {
    env: childEnv(options.env),
    cwd: options.cwd ?? REPO,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  return new RunningFieldrelay(proc);
}

/** A temp dir holding a config file and a data dir; removed by cleanup(). */
export class Workspace {
  readonly dir: string;
  readonly dataDir: string;

  constructor(prefix = "fr-ws-") {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
    this.dataDir = join(this.dir, "data");
    mkdirSync(this.dataDir);
  }

  get queuePath(): string {
    return join(this.dataDir, "queue.db");
  }

  /** Write a config (an object is serialised as TOML); returns its path. */
  writeConfig(config: string | Record<string, unknown>, name = "config.toml"): string {
    const path = join(this.dir, name);
    writeFileSync(path, typeof config === "string" ? config : stringify(config));
    return path;
  }

  file(name: string, content: string | Uint8Array): string {
    const path = join(this.dir, name);
    writeFileSync(path, content);
    return path;
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
