/**
 * The staging tree: the few files of the image that install.sh and the baker edit, copied out
 * with their modes and owners, edited on the host, and written back — only what changed.
 *
 *   STAGE/etc/...              ← whole /etc of the root partition (debugfs rdump)
 *   STAGE/boot/firmware/...    ← config.txt, cmdline.txt of the FAT partition (+ empty overlays/)
 *
 * A snapshot (path, type, mode, owner, link target, content digest) is taken before and after
 * the edits; `diffSnapshots` says what to write, `ext4Commands` turns that into one debugfs
 * script. Paths in snapshots are relative to STAGE, without a leading slash.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { exec } from "./exec.ts";
import { debugfsQuote } from "./ext4.ts";

export interface StagedEntry {
  path: string;
  type: "f" | "d" | "l";
  /** Permission bits including setuid/setgid/sticky (no file-type bits). */
  mode: number;
  uid: number;
  gid: number;
  target?: string;
  digest?: string;
}

export type Snapshot = Map<string, StagedEntry>;

/** Walk STAGE with find (under `prefix`, e.g. fakeroot, so owners are the recorded ones). */
export function snapshot(stage: string, prefix: string[] = []): Snapshot {
  const out = exec([
    ...prefix,
    "find",
    stage,
    "-mindepth",
    "1",
    "-printf",
    "%y\\t%m\\t%U\\t%G\\t%l\\t%P\\0",
  ]).stdout;
  const snap: Snapshot = new Map();
  for (const rec of out.toString().split("\0")) {
    if (!rec) continue;
    const [y, m, u, g, l, ...rest] = rec.split("\t");
    const path = rest.join("\t");
    if (y !== "f" && y !== "d" && y !== "l")
      throw new Error(`cannot stage ${path}: file type ${y} is not supported`);
    const entry: StagedEntry = {
      path,
      type: y,
      mode: Number.parseInt(m as string, 8),
      uid: Number(u),
      gid: Number(g),
    };
    if (y === "l") entry.target = l;
    if (y === "f")
      entry.digest = createHash("sha256")
        .update(readFileSync(join(stage, path)))
        .digest("hex");
    snap.set(path, entry);
  }
  return snap;
}

/** What changed between two snapshots: entries new or different (parents first), paths removed. */
export function diffSnapshots(
  before: Snapshot,
  after: Snapshot,
): { changed: StagedEntry[]; removed: StagedEntry[] } {
  const changed: StagedEntry[] = [];
  for (const e of after.values()) {
    const b = before.get(e.path);
    if (
      !b ||
      b.type !== e.type ||
      b.mode !== e.mode ||
      b.uid !== e.uid ||
      b.gid !== e.gid ||
      b.target !== e.target ||
      b.digest !== e.digest
    )
      changed.push(e);
  }
  const removed = [...before.values()].filter((e) => !after.has(e.path));
  changed.sort((a, b) => (a.path < b.path ? -1 : 1));
  removed.sort((a, b) => (a.path < b.path ? 1 : -1)); // children before their directory
  return { changed, removed };
}

const TYPE_BITS = { f: 0o100000, d: 0o040000, l: 0o120000 } as const;

/**
 * debugfs commands writing `changed` into the root file system. `existing` holds the paths
 * (relative) that exist in the image although they were not staged: a directory there is left
 * as it is, a file there is replaced. `before` tells which staged paths came from the image.
 */
export function ext4Commands(
  changed: StagedEntry[],
  removed: StagedEntry[],
  before: Snapshot,
  existing: Set<string>,
  stage: string,
): string[] {
  const cmds: string[] = [];
  for (const e of removed) cmds.push(`${e.type === "d" ? "rmdir" : "rm"} ${debugfsQuote(`/${e.path}`)}`);
  for (const e of changed) {
    const p = debugfsQuote(`/${e.path}`);
    const was = before.get(e.path);
    const inImage = was !== undefined || existing.has(e.path);
    if (e.type === "d") {
      if (was?.type === "d") {
        // metadata change of a staged directory: fall through to sif
      } else if (inImage)
        continue; // a directory the image already has and nobody staged
      else cmds.push(`mkdir ${p}`);
    } else {
      if (inImage) cmds.push(`rm ${p}`);
      if (e.type === "f") cmds.push(`write ${debugfsQuote(join(stage, e.path))} ${p}`);
      else cmds.push(`symlink ${p} ${debugfsQuote(e.target ?? "")}`);
    }
    if (e.type !== "l") cmds.push(`sif ${p} mode 0${(TYPE_BITS[e.type] | e.mode).toString(8)}`);
    cmds.push(`sif ${p} uid ${e.uid}`, `sif ${p} gid ${e.gid}`);
  }
  return cmds;
}

/** The uid and gid of `user` in a passwd file's text. */
export function userIds(passwd: string, user: string): { uid: number; gid: number } | undefined {
  for (const line of passwd.split("\n")) {
    const f = line.split(":");
    if (f[0] === user && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}
