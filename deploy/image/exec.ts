/**
 * exec runs the external tools the baker is built on (sfdisk, mtools, debugfs, mkfs.ext4, …)
 * synchronously and turns a failure into a BakeError that names the command and its stderr.
 * Everything here is rootless: when the baker is not root, commands that must record file
 * owners run under fakeroot with one state file shared by the whole bake (see `asRoot`).
 */
import { spawnSync } from "node:child_process";
import { FieldrelayError } from "../../src/errors/index.ts";

/** BakeError is any refusal or failure of the image baker; `describe()` is the one line printed. */
export class BakeError extends FieldrelayError {}

export interface ExecResult {
  stdout: Buffer;
  stderr: string;
}

export interface ExecOptions {
  input?: string | Buffer;
  cwd?: string;
  env?: Record<string, string>;
  /** Exit codes that count as success (default: only 0). */
  okCodes?: number[];
  hint?: string;
}

/** Run argv[0] with argv[1..]; throws BakeError with the command's stderr when it fails. */
export function exec(argv: string[], opts: ExecOptions = {}): ExecResult {
  const r = spawnSync(argv[0] as string, argv.slice(1), {
    input: opts.input,
    cwd: opts.cwd,
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
    maxBuffer: 1 << 30,
  });
  const stderr = r.stderr?.toString() ?? "";
  if (r.error) {
    const enoent = (r.error as NodeJS.ErrnoException).code === "ENOENT";
    throw new BakeError(`cannot run ${argv[0]}: ${r.error.message}`, {
      hint: enoent ? `install it (${packageOf(argv[0] as string)})` : opts.hint,
      context: { argv },
    });
  }
  if (!(opts.okCodes ?? [0]).includes(r.status ?? -1)) {
    const tail = stderr.trim().split("\n").slice(-5).join(" | ");
    throw new BakeError(`${argv.join(" ")} failed (exit ${r.status ?? r.signal}): ${tail}`, {
      hint: opts.hint,
      context: { argv, status: r.status, stderr },
    });
  }
  return { stdout: r.stdout, stderr };
}

/** The Debian package that provides a tool, for "install it" hints. */
export function packageOf(tool: string): string {
  const pkgs: Record<string, string> = {
    sfdisk: "fdisk",
    mcopy: "mtools",
    mtype: "mtools",
    mmd: "mtools",
    mdir: "mtools",
    debugfs: "e2fsprogs",
    "mkfs.ext4": "e2fsprogs",
    resize2fs: "e2fsprogs",
    e2fsck: "e2fsprogs",
    tune2fs: "e2fsprogs",
    dumpe2fs: "e2fsprogs",
    "mkfs.vfat": "dosfstools",
    "fsck.vfat": "dosfstools",
    fakeroot: "fakeroot",
    xz: "xz-utils",
  };
  return `apt-get install ${pkgs[tool] ?? tool}`;
}

/**
 * Prefix for commands that create or read files whose owner matters. As root: nothing. Otherwise
 * fakeroot, loading and saving `stateFile`, so owners set by one command (install.sh's chown,
 * debugfs rdump) are seen by the next (the snapshot walk).
 */
export function asRoot(stateFile: string): string[] {
  if (process.getuid?.() === 0) return [];
  return ["fakeroot", "-i", stateFile, "-s", stateFile, "--"];
}
