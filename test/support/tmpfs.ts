/**
 * Small real filesystems for storage-fault tests: a tmpfs of a given size mounted on a directory,
 * and a filler file that takes the rest of it (a log file that grew, another program).
 */
import { closeSync, mkdirSync, openSync, rmSync, statfsSync, writeSync } from "node:fs";
import { join } from "node:path";

/** Why a tmpfs cannot be mounted here (undefined when it can); throws under CI=true. */
export function cannotMount(): string | undefined {
  if (process.getuid?.() === 0) return undefined;
  const reason = "mounting a tmpfs needs root";
  if (process.env.CI === "true") throw new Error(reason);
  return reason;
}

export class Tmpfs {
  private constructor(readonly dir: string) {}

  static mount(dir: string, size: string): Tmpfs {
    mkdirSync(dir, { recursive: true });
    const r = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
    if (r.exitCode !== 0) throw new Error(`mount tmpfs on ${dir}: ${r.stderr.toString()}`);
    return new Tmpfs(dir);
  }

  /** Free bytes for an unprivileged writer (root ignores nothing on tmpfs: same figure). */
  get freeBytes(): number {
    const s = statfsSync(this.dir);
    return s.bavail * s.bsize;
  }

  /** Fill the filesystem with `name` until at most `leaveBytes` are free (ENOSPC ends it). */
  fill(leaveBytes = 0, name = "filler"): string {
    const path = join(this.dir, name);
    const fd = openSync(path, "a");
    const chunk = Buffer.alloc(4096, 0x61);
    try {
      while (this.freeBytes > leaveBytes) {
        const n = Math.min(chunk.length, this.freeBytes - leaveBytes);
        writeSync(fd, chunk, 0, Math.max(n, 1));
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
    } finally {
      closeSync(fd);
    }
    return path;
  }

  unfill(name = "filler"): void {
    rmSync(join(this.dir, name), { force: true });
  }

  resize(size: string): void {
    const r = Bun.spawnSync(["mount", "-o", `remount,size=${size}`, this.dir]);
    if (r.exitCode !== 0) throw new Error(`remount tmpfs ${this.dir}: ${r.stderr.toString()}`);
  }

  unmount(): void {
    Bun.spawnSync(["umount", "-l", this.dir]);
  }
}
