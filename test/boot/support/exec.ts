/**
 * Running host programs for the boot test: every call is synchronous (the steps are sequential and
 * each is one long program), throws with the program's stderr on failure, and can be timed.
 */
import { spawnSync } from "node:child_process";

export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string>;
  input?: string | Buffer;
  timeoutMs?: number;
  /** Let the program write straight to our stdout/stderr (long steps show progress in the test log). */
  inherit?: boolean;
}

export class ExecError extends Error {
  constructor(
    readonly argv: string[],
    readonly status: number | null,
    readonly stderr: string,
  ) {
    super(
      `${argv.join(" ")} failed (exit ${status ?? "signal"}): ${stderr.trim().split("\n").slice(-15).join("\n")}`,
    );
  }
}

/** Runs argv[0] with the rest as arguments; returns stdout. */
export function exec(argv: string[], opts: ExecOptions = {}): string {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error("exec: empty argv");
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env } as NodeJS.ProcessEnv,
    input: opts.input,
    timeout: opts.timeoutMs ?? 20 * 60_000,
    maxBuffer: 256 * 1024 * 1024,
    stdio: opts.inherit ? ["pipe", "inherit", "inherit"] : "pipe",
  });
  if (r.error) throw new ExecError(argv, null, String(r.error));
  if (r.status !== 0) throw new ExecError(argv, r.status, r.stderr?.toString() ?? "(see output above)");
  return r.stdout?.toString() ?? "";
}

/** Seconds a step took, for the figures printed at the end of the test. */
export function timed<T>(timings: Record<string, number>, name: string, step: () => T): T {
  const t0 = performance.now();
  try {
    return step();
  } finally {
    timings[name] = Math.round((performance.now() - t0) / 100) / 10;
  }
}

export async function timedAsync<T>(
  timings: Record<string, number>,
  name: string,
  step: () => Promise<T>,
): Promise<T> {
  const t0 = performance.now();
  try {
    return await step();
  } finally {
    timings[name] = Math.round((performance.now() - t0) / 100) / 10;
  }
}
