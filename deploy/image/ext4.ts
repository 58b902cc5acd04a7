/**
 * Ext4Volume reads and writes an ext4 partition inside an image file through e2fsprogs'
 * `img?offset=BYTES` device syntax, without mounting: debugfs for files (one `debugfs -w -f CMDS`
 * per batch of writes), e2fsck, resize2fs, tune2fs, dumpe2fs. Paths are absolute inside the volume.
 *
 * resize2fs is NOT used on `img?offset=`: it sizes from the whole file and, after resizing,
 * truncates the file to the new file-system size ignoring the offset (measured with 1.47.0), which
 * cuts the end of the grown file system off. `grow` resizes a copy of the partition instead.
 */
import { BakeError, exec } from "./exec.ts";

export interface MakeExt4Options {
  image: string;
  offsetBytes: number;
  sizeBytes: number;
  label: string;
  /** uid:gid of the root directory. */
  rootOwner: { uid: number; gid: number };
  /** Populate from this directory (mkfs.ext4 -d). */
  fromDir?: string;
  /** Command prefix that runs mkfs as root (["fakeroot"] when not root), so -d keeps owners. */
  asRoot?: string[];
}

/**
 * Make an ext4 file system inside an image at an offset. Always 4 KiB blocks (small partitions
 * otherwise get 1 KiB ones) and the "default" usage type, so the result does not depend on the
 * size of the whole image file.
 */
export function makeExt4(o: MakeExt4Options): Ext4Volume {
  exec([
    ...(o.asRoot ?? []),
    "mkfs.ext4",
    "-q",
    "-F",
    "-b",
    "4096",
    "-T",
    "default",
    "-L",
    o.label,
    "-E",
    `offset=${o.offsetBytes},root_owner=${o.rootOwner.uid}:${o.rootOwner.gid}`,
    ...(o.fromDir ? ["-d", o.fromDir] : []),
    o.image,
    String(Math.floor(o.sizeBytes / 4096)),
  ]);
  return new Ext4Volume(o.image, o.offsetBytes);
}

/** One directory entry as `debugfs ls -p` prints it: /inode/mode(octal)/uid/gid/name/size/ */
export interface Ext4Entry {
  name: string;
  mode: number;
  uid: number;
  gid: number;
}

/** Parse `debugfs -f` output of several `ls -p DIR` commands into DIR → entries (pure). */
export function parseLsBatch(output: string): Map<string, Ext4Entry[]> {
  const result = new Map<string, Ext4Entry[]>();
  let current: Ext4Entry[] | undefined;
  for (const line of output.split("\n")) {
    const cmd = /^debugfs: ls -p "?(.*?)"?$/.exec(line);
    if (cmd) {
      current = [];
      result.set(cmd[1] as string, current);
      continue;
    }
    const e = /^\/(\d+)\/(\d+)\/(\d+)\/(\d+)\/(.*)\/(\d*)\/$/.exec(line);
    if (e && current && e[5] !== "." && e[5] !== "..")
      current.push({
        name: e[5] as string,
        mode: Number.parseInt(e[2] as string, 8),
        uid: Number(e[3]),
        gid: Number(e[4]),
      });
  }
  return result;
}

/** Quote a path for a debugfs command line; refuses characters debugfs cannot take. */
export function debugfsQuote(path: string): string {
  if (/["\n\r\\]/.test(path)) throw new Error(`path not writable with debugfs: ${JSON.stringify(path)}`);
  return /[\s]/.test(path) ? `"${path}"` : path;
}

export class Ext4Volume {
  constructor(
    readonly img: string,
    readonly offsetBytes: number,
  ) {}

  get spec(): string {
    return `${this.img}?offset=${this.offsetBytes}`;
  }

  /** The file's bytes, or undefined when it is missing. */
  read(path: string): Buffer | undefined {
    const listing = this.list([dirname(path)]).get(dirname(path));
    if (!listing?.some((e) => e.name === basename(path) && (e.mode & 0o170000) === 0o100000))
      return undefined;
    return exec(["debugfs", "-R", `cat ${debugfsQuote(path)}`, this.spec]).stdout;
  }

  /** Entries of each directory; a missing directory maps to an empty list. */
  list(dirs: string[]): Map<string, Ext4Entry[]> {
    if (dirs.length === 0) return new Map();
    const cmds = dirs.map((d) => `ls -p ${debugfsQuote(d)}\n`).join("");
    return parseLsBatch(exec(["debugfs", "-f", "-", this.spec], { input: cmds }).stdout.toString());
  }

  /** Copy a directory tree out with modes and owners (`rdump DIR HOSTDIR` → HOSTDIR/<basename>). */
  rdump(dir: string, hostDir: string, prefix: string[] = []): void {
    exec([...prefix, "debugfs", "-R", `rdump ${debugfsQuote(dir)} ${hostDir}`, this.spec]);
  }

  /**
   * Run write commands in one debugfs session. debugfs exits 0 even when a command fails, so
   * any stderr line other than its version banner is a failure.
   */
  apply(commands: string[]): void {
    if (commands.length === 0) return;
    const r = exec(["debugfs", "-w", "-f", "-", this.spec], { input: `${commands.join("\n")}\n` });
    const errors = r.stderr.split("\n").filter((l) => l.trim() && !/^debugfs \d/.test(l));
    if (errors.length)
      throw new BakeError(`debugfs could not write the root file system: ${errors.slice(0, 5).join(" | ")}`);
  }

  /** e2fsck -f: `repair` fixes (-p), otherwise only checks (-n). */
  check(repair: boolean): void {
    exec(["e2fsck", "-f", repair ? "-p" : "-n", this.spec], {
      okCodes: repair ? [0, 1] : [0],
      hint: "the file system is damaged; start again from a fresh copy of the base image",
    });
  }

  /**
   * Grow the file system from `oldBytes` to exactly `blocks` blocks: copy the partition to
   * `scratch`, e2fsck -f and resize2fs the copy, and copy it back (the old range byte for byte,
   * the new range sparse, as the image there is still all zeros).
   */
  grow(oldBytes: number, blocks: number, scratch: string): void {
    const dd = (args: string[]) => exec(["dd", "bs=4M", "status=none", ...args]);
    dd([
      `if=${this.img}`,
      `of=${scratch}`,
      "iflag=skip_bytes,count_bytes",
      `skip=${this.offsetBytes}`,
      `count=${oldBytes}`,
      "conv=sparse",
    ]);
    exec(["e2fsck", "-f", "-p", scratch], { okCodes: [0, 1] });
    exec(["resize2fs", scratch, String(blocks)]);
    dd([
      `if=${scratch}`,
      `of=${this.img}`,
      "iflag=count_bytes",
      `count=${oldBytes}`,
      "oflag=seek_bytes",
      `seek=${this.offsetBytes}`,
      "conv=notrunc",
    ]);
    dd([
      `if=${scratch}`,
      `of=${this.img}`,
      "iflag=skip_bytes",
      `skip=${oldBytes}`,
      "oflag=seek_bytes",
      `seek=${this.offsetBytes + oldBytes}`,
      "conv=notrunc,sparse",
    ]);
  }

  /** `dumpe2fs -h` as key → value. */
  superblock(): Map<string, string> {
    const out = exec(["dumpe2fs", "-h", this.spec]).stdout.toString();
    const map = new Map<string, string>();
    for (const line of out.split("\n")) {
      const m = /^([^:]+):\s*(.*)$/.exec(line);
      if (m) map.set(m[1] as string, m[2] as string);
    }
    return map;
  }
}

function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}
