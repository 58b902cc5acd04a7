/**
 * Start-up benchmarks of the compiled x64 binary (dist/fieldrelay-linux-x64; npm run build first):
 *   - `fieldrelay version`, median wall time of RUNS starts, beside a bare Bun start (an empty
 *     program compiled the same way, same run): target ≤ 30 ms on x64;
 *   - `fieldrelay run` until it sends READY=1 on its NOTIFY_SOCKET (a simulated sensor, the broker
 *     unreachable, ingest and health on free ports): target ≤ 150 ms on x64.
 * A slow board multiplies both; the ratios to the bare start are what carries over.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { UnixDgramServer } from "../support/unix-dgram.ts";
import type { BenchRow } from "./run.ts";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const BINARY = join(REPO, "dist", "fieldrelay-linux-x64");
const RUNS = Number(process.env.FIELDRELAY_BENCH_STARTS ?? 15);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

/** Median wall time (ms) of running argv to exit. */
function startMs(argv: string[]): number {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const r = spawnSync(argv[0]!, argv.slice(1), { stdio: "ignore" });
    times.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`${argv.join(" ")} exited ${r.status}`);
  }
  return median(times);
}

/** An empty program compiled like fieldrelay: the floor any compiled Bun binary pays. */
function bareBinary(dir: string): string {
  const src = join(dir, "bare.ts");
  writeFileSync(src, "process.exitCode = 0;\n");
  const out = join(dir, "bare");
  const r = spawnSync(process.execPath, ["build", "--compile", "--minify", src, "--outfile", out], {
    stdio: "inherit",
  });
  if (r.status !== 0) throw new Error("bun build --compile of the bare program failed");
  return out;
}

async function readyMs(dir: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < Math.max(5, Math.floor(RUNS / 2)); i++) {
    const run = join(dir, `run-${i}`);
    spawnSync("mkdir", ["-p", run]);
    const config = join(run, "config.toml");
    writeFileSync(
      config,
      `[device]\nid = "bench"\n[mqtt]\nurl = "mqtt://127.0.0.1:9"\n[queue]\npath = "${run}/queue.db"\n[ingest]\nlisten = ""\n[health]\nlisten = ""\n[rtc]\nmode = "none"\n[[sensor]]\nname = "sim"\ndriver = "simulated"\ninterval_s = 1\n`,
    );
    const notify = UnixDgramServer.path();
    try {
      const t0 = performance.now();
      const child = Bun.spawn([BINARY, "run", "-c", config], {
        // FIELDRELAY_* would be read as config overrides.
        env: {
          ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("FIELDRELAY_"))),
          NOTIFY_SOCKET: notify.address,
        },
        stdout: "ignore",
        stderr: "pipe",
      });
      let ready = -1;
      while (performance.now() - t0 < 10_000) {
        if (notify.drain().some((m) => /(^|\n)READY=1/.test(m))) {
          ready = performance.now() - t0;
          break;
        }
        await Bun.sleep(1);
      }
      child.kill("SIGTERM");
      await child.exited;
      if (ready < 0)
        throw new Error(
          `fieldrelay run sent no READY=1 within 10 s: ${await new Response(child.stderr).text()}`,
        );
      times.push(ready);
    } finally {
      notify.close();
    }
  }
  return median(times);
}

export async function runStartupBenchmarks(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "fr-bench-start-"));
  try {
    const bare = startMs([bareBinary(dir)]);
    const version = startMs([BINARY, "version"]);
    const ready = await readyMs(dir);
    return [
      {
        name: "`fieldrelay version`, x64 compiled binary, median wall time (vs an empty compiled Bun program)",
        value: version,
        unit: "ms",
        baseline: bare,
        ratio: version / bare,
        target: "≤ 30 ms",
      },
      {
        name: "`fieldrelay run` to READY=1 (sd_notify), x64, simulated sensor, broker down (vs an empty compiled Bun program)",
        value: ready,
        unit: "ms",
        baseline: bare,
        ratio: ready / bare,
        target: "≤ 150 ms",
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) console.log(await runStartupBenchmarks());
