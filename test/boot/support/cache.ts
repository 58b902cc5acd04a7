/**
 * The boot test's cache lives outside the repository (default /var/cache/fieldrelay-boot, or
 * FIELDRELAY_BOOT_CACHE): the Debian base and the kernel/initramfs take minutes to make and do not
 * change between runs. Entries are named by a hash of everything that went into them and written
 * under a temporary name then renamed, so an interrupted build never leaves a usable-looking entry.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";

export const CACHE_DIR = process.env.FIELDRELAY_BOOT_CACHE ?? "/var/cache/fieldrelay-boot";

export function cacheKey(inputs: unknown): string {
  return createHash("sha256").update(JSON.stringify(inputs)).digest("hex").slice(0, 16);
}

/**
 * Returns CACHE_DIR/name, building it first with make(tmpPath) when absent. make writes a file or
 * a directory at tmpPath; it becomes the entry only if make returns.
 */
export function cached(name: string, make: (tmpPath: string) => void): { path: string; hit: boolean } {
  mkdirSync(CACHE_DIR, { recursive: true });
  const path = join(CACHE_DIR, name);
  if (existsSync(path)) return { path, hit: true };
  const tmp = `${path}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    make(tmp);
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { path, hit: false };
}
