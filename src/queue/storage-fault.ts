/**
 * Storage faults: errors that say the medium or its file system failed (EIO; ext4 turned the
 * partition read-only after an error; a card that went away) — not that the database is damaged.
 * A failing file system is never a reason to move queue.db aside: the file is fine, the card is
 * not, and renaming would fail anyway (EROFS/EIO) and turn the start into a crash loop.
 *
 * What an operator of a Pi with a dying card needs from the message: which file, which device and
 * mount point, whether it is mounted read-only now, and what to look at. describeMount() reads that
 * from /proc/self/mountinfo (the text is injected for tests).
 */
import { readFileSync } from "node:fs";
import { dirname } from "node:path";

/** SQLite's and the kernel's names for a failing medium or file system. */
export function isStorageFault(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = String((error as { code?: unknown }).code ?? "");
  if (error.name === "SQLiteError")
    return code.startsWith("SQLITE_IOERR") || code.startsWith("SQLITE_READONLY");
  return code === "EIO" || code === "EROFS";
}

/** The mount holding `path`: its device, file system, mount point and whether it is read-only. */
export interface MountOf {
  source: string;
  device: string;
  fstype: string;
  mountPoint: string;
  readOnly: boolean;
}

/** Unescape mountinfo's octal escapes (\040 for a space). */
const unescapeOctal = (s: string) =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

/** The longest mount point that is `dir` or a parent of it (mountinfo(5) format). */
export function mountOf(dir: string, mountinfo: string): MountOf | undefined {
  let best: MountOf | undefined;
  for (const line of mountinfo.split("\n")) {
    const f = line.split(" ");
    const sep = f.indexOf("-");
    if (f.length < 10 || sep < 6) continue;
    const mountPoint = unescapeOctal(f[4] as string);
    const inside = dir === mountPoint || dir.startsWith(mountPoint === "/" ? "/" : `${mountPoint}/`);
    if (!inside || (best && best.mountPoint.length > mountPoint.length)) continue;
    best = {
      source: unescapeOctal(f[sep + 2] as string),
      device: f[2] as string,
      fstype: f[sep + 1] as string,
      mountPoint,
      readOnly: (f[5] as string).split(",").includes("ro") || (f[sep + 3] ?? "").split(",").includes("ro"),
    };
  }
  return best;
}

function readMountinfo(): string {
  try {
    return readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return "";
  }
}

/**
 * One line for the log, /health and the exit message: `storage fault on <path> (<device> <dev>
 * <fstype> on <mount point>, mounted read-only now): <error> — <what to do>`.
 */
export function describeStorageFault(path: string, error: unknown, mountinfo = readMountinfo()): string {
  const m = mountOf(dirname(path), mountinfo);
  const where = m
    ? ` (${m.source} ${m.device} ${m.fstype} on ${m.mountPoint}${m.readOnly ? ", mounted read-only now" : ""})`
    : "";
  const e = error as { code?: string; message?: string };
  const what = `${e.code ? `${e.code}: ` : ""}${e.message ?? String(error)}`;
  return `storage fault on ${path}${where}: ${what} — the card or its file system failed (see dmesg); readings are taken only as the broker acks them until it is fixed (fsck, remount, or replace the card)`;
}
