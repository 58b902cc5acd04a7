/**
 * The image baker: turns a stock Raspberry Pi OS image into a fieldrelay device image, without
 * root and without loop mounts.
 *
 *   bun deploy/image/bake.ts --base raspios-lite-arm64.img[.xz] --out device.img
 *       [--data-size 1G] [--root-size SIZE] [--config my.toml] [--hostname NAME] [--bundle dist/bundle]
 *
 * Steps (a failure at any step, or SIGINT/SIGTERM, deletes the partial output):
 *   validate → copy (cp --sparse) or decompress (xz -dc) to <out>.partial-<pid> → grow root (p2)
 *   → append data (p3) → stage /etc and the boot files → bundle/install.sh --root STAGE
 *   → fstab, `ro` cmdline, hostname, first-boot data grow unit → mkfs data (owned by fieldrelay,
 *   journal_data) → write back what changed → fsck all three → rename to <out>.
 */

import { spawnSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statfsSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError } from "commander";
import { describeError, ExitCode } from "../../src/errors/index.ts";
import { asRoot, BakeError, exec } from "./exec.ts";
import { Ext4Volume, makeExt4 } from "./ext4.ts";
import { FatVolume } from "./fat.ts";
import { appendPartition, readPartitionTable, resizePartition } from "./partitions.ts";
import {
  checkFreeSpace,
  checkHostname,
  DATA_LABEL,
  fstabDevices,
  fstabMountPoints,
  hostsWithHostname,
  type Layout,
  planLayout,
  readOnlyCmdline,
  renderFstab,
  SECTOR,
} from "./plan.ts";
import { formatSize, MiB, parseSize } from "./size.ts";
import { diffSnapshots, ext4Commands, snapshot, userIds } from "./stage.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "../..");

export interface BakeOptions {
  base: string;
  out: string;
  dataSize: string;
  rootSize?: string;
  config?: string;
  hostname?: string;
  bundle: string;
  /** Where progress lines go (default stdout). */
  print?: (line: string) => void;
  /** For tests: fail on purpose after this step, to prove no partial output is left. */
  failAfter?: string;
}

export interface BakeSummary {
  out: string;
  layout: Layout;
  fieldrelay: { uid: number; gid: number };
  written: number;
  seconds: number;
}

/** Same file, also through a symlink or a different spelling of the path (out may not exist). */
function sameFile(a: string, b: string): boolean {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return join(realpathSync(dirname(resolve(p))), basename(p));
    }
  };
  if (real(a) === real(b)) return true;
  try {
    const sa = statSync(a);
    const sb = statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}

/** The uncompressed size of the base (xz --robot --list for .xz). */
function baseBytes(base: string): number {
  if (!base.endsWith(".xz")) return statSync(base).size;
  const out = exec(["xz", "--robot", "--list", base]).stdout.toString();
  const totals = out.split("\n").find((l) => l.startsWith("totals\t"));
  const bytes = Number(totals?.split("\t")[4]);
  if (!Number.isFinite(bytes))
    throw new BakeError(`cannot read the uncompressed size of ${base}`, {
      hint: "is it a valid .xz file? try xz -t",
    });
  return bytes;
}

function copyBase(base: string, partial: string): void {
  if (base.endsWith(".xz")) {
    const fd = openSync(partial, "w", 0o644);
    try {
      const r = spawnSync("xz", ["-dc", base], { stdio: ["ignore", fd, "pipe"] });
      if (r.status !== 0)
        throw new BakeError(`xz -dc ${base} failed: ${r.stderr?.toString().trim() || r.error?.message}`, {
          hint: "check the download with xz -t",
        });
    } finally {
      closeSync(fd);
    }
  } else exec(["cp", "--sparse=always", base, partial]);
}

function checkBundle(bundle: string): void {
  for (const f of ["install.sh", "fieldrelay"])
    if (!existsSync(join(bundle, f)))
      throw new BakeError(`${join(bundle, f)} is missing`, {
        hint: "run npm run build (it writes dist/bundle/), or pass --bundle DIR",
      });
}

function fstabTemplate(bundle: string): string {
  const path = join(bundle, "device/fstab.ro-root");
  if (existsSync(path)) return readFileSync(path, "utf8");
  throw new BakeError(`no fstab template in the bundle (${path})`, {
    hint: "rebuild the bundle with npm run build",
  });
}

/** Inputs checked and resolved before anything is written. */
interface Inputs {
  base: string;
  out: string;
  bundle: string;
  dataSizeBytes: number;
  rootSizeBytes: number | undefined;
  hostname: string | undefined;
  config: string | undefined;
}

/** Check the options and the space for the output; throws BakeError naming the option to fix. */
function validate(opts: BakeOptions): Inputs {
  const dataSizeBytes = parseSize(opts.dataSize, "--data-size");
  const rootSizeBytes = opts.rootSize === undefined ? undefined : parseSize(opts.rootSize, "--root-size");
  const hostname = opts.hostname === undefined ? undefined : checkHostname(opts.hostname);
  const base = resolve(opts.base);
  const out = resolve(opts.out);
  const bundle = resolve(opts.bundle);
  if (!existsSync(base) || !statSync(base).isFile())
    throw new BakeError(`--base ${opts.base} does not exist or is not a file`, {
      hint: "pass the downloaded Raspberry Pi OS .img or .img.xz",
    });
  if (sameFile(base, out))
    throw new BakeError(`--out ${opts.out} is the base image itself`, {
      hint: "write the device image to a new file; the base is never modified",
    });
  if (opts.config !== undefined && !existsSync(opts.config))
    throw new BakeError(`--config ${opts.config} does not exist`, {
      hint: "pass a fieldrelay config file (see deploy/config.example.toml)",
    });
  checkBundle(bundle);
  const outDir = dirname(out);
  if (!existsSync(outDir))
    throw new BakeError(`the output directory ${outDir} does not exist`, { hint: "create it first" });
  const bundleBytes = statSync(join(bundle, "fieldrelay")).size;
  const need = baseBytes(base) + 2 * bundleBytes + Math.min(dataSizeBytes, 256 * MiB) + 64 * MiB;
  const fs = statfsSync(outDir);
  checkFreeSpace(need, fs.bavail * fs.bsize, outDir);
  const config = opts.config === undefined ? undefined : resolve(opts.config);
  return { base, out, bundle, dataSizeBytes, rootSizeBytes, hostname, config };
}

/** The base's partitions opened, after checking it is Raspberry Pi OS (boot files, ext4 root). */
interface BaseImage {
  layout: Layout;
  boot: FatVolume;
  root: Ext4Volume;
  cmdline: Buffer;
  blockSize: number;
}

function openBase(partial: string, inputs: Inputs, baseName: string): BaseImage {
  const layout = planLayout(readPartitionTable(partial), {
    rootSizeBytes: inputs.rootSizeBytes,
    dataSizeBytes: inputs.dataSizeBytes,
    base: baseName,
  });
  const boot = new FatVolume(partial, layout.boot.start * SECTOR, layout.boot.size * SECTOR);
  const root = new Ext4Volume(partial, layout.root.start * SECTOR);
  const notPi = (why: string) =>
    new BakeError(`${baseName} is not a Raspberry Pi OS image: ${why}`, {
      hint: "pass the .img or .img.xz downloaded from raspberrypi.com (Raspberry Pi OS Lite)",
    });
  const cmdline = boot.read("/cmdline.txt");
  if (boot.read("/config.txt") === undefined || cmdline === undefined)
    throw notPi("partition 1 has no config.txt and cmdline.txt");
  let blockSize: number;
  try {
    blockSize = Number(root.superblock().get("Block size"));
  } catch {
    throw notPi("partition 2 is not an ext4 file system");
  }
  if (root.read("/etc/fstab") === undefined) throw notPi("partition 2 has no /etc/fstab");
  return { layout, boot, root, cmdline, blockSize };
}

/** Grow the root partition and its file system to exactly its size, then append the data partition. */
function partition(partial: string, img: BaseImage, work: string): void {
  const { layout, root, blockSize } = img;
  exec(["truncate", "-s", String(layout.imageBytes), partial]);
  if (layout.root.grownBy > 0) {
    resizePartition(partial, 2, layout.root.size);
    const rootBytesBefore = layout.root.size * SECTOR - layout.root.grownBy;
    root.grow(rootBytesBefore, (layout.root.size * SECTOR) / blockSize, join(work, "root.ext4"));
  }
  appendPartition(partial, layout.data.start, layout.data.size, "83");
}

/** A copy of /etc and the boot files that install.sh and the baker edit, under fakeroot. */
interface Stage {
  dir: string;
  asr: string[];
  before: ReturnType<typeof snapshot>;
}

function stageFiles(img: BaseImage, work: string): Stage {
  const dir = join(work, "stage");
  const fakeState = join(work, "fakeroot.state");
  writeFileSync(fakeState, "");
  const asr = asRoot(fakeState);
  mkdirSync(join(dir, "boot/firmware/overlays"), { recursive: true });
  img.root.rdump("/etc", dir, asr);
  for (const f of ["config.txt", "cmdline.txt"])
    writeFileSync(join(dir, "boot/firmware", f), img.boot.read(`/${f}`) as Buffer);
  return { dir, asr, before: snapshot(dir, asr) };
}

/** The bundle's install.sh --root STAGE: the same installer a live device runs. */
function runInstaller(stage: Stage, inputs: Inputs, print: (line: string) => void): void {
  const argv = [
    ...stage.asr,
    "bash",
    join(inputs.bundle, "install.sh"),
    "--root",
    stage.dir,
    "--boot-dir",
    join(stage.dir, "boot/firmware"),
    ...(inputs.config ? ["--config", inputs.config] : []),
  ];
  const install = spawnSync(argv[0] as string, argv.slice(1), { encoding: "utf8" });
  for (const l of `${install.stdout ?? ""}`.split("\n").filter(Boolean)) print(`  install.sh: ${l}`);
  if (install.status !== 0)
    throw new BakeError(
      `install.sh failed (exit ${install.status}): ${(install.stderr ?? "").trim().split("\n").slice(-3).join(" | ")}`,
      { hint: "run it by hand: bundle/install.sh --root DIR to see why" },
    );
}

/**
 * What only an image needs: fstab with the read-only root, `ro` on the kernel command line, the host
 * name, resolv.conf that follows DHCP, and the first-boot unit that grows the data partition.
 */
function deviceEdits(stage: Stage, img: BaseImage, inputs: Inputs, print: (line: string) => void): void {
  const etc = (p: string) => join(stage.dir, "etc", p);
  const fstab = renderFstab(fstabTemplate(inputs.bundle), fstabDevices(img.layout.diskId));
  writeFileSync(etc("fstab"), fstab);
  for (const dir of fstabMountPoints(fstab)) mkdirSync(join(stage.dir, dir), { recursive: true });
  writeFileSync(join(stage.dir, "boot/firmware/cmdline.txt"), readOnlyCmdline(img.cmdline.toString()));
  if (inputs.hostname) {
    writeFileSync(etc("hostname"), `${inputs.hostname}\n`);
    writeFileSync(
      etc("hosts"),
      hostsWithHostname(
        existsSync(etc("hosts")) ? readFileSync(etc("hosts"), "utf8") : "127.0.0.1\tlocalhost\n",
        inputs.hostname,
      ),
    );
  }
  // A read-only /etc/resolv.conf cannot follow DHCP: point it at the copy NetworkManager keeps in
  // /run (Raspberry Pi OS bookworm), or the broker's host name stops resolving after a lease change.
  if (existsSync(etc("NetworkManager"))) {
    rmSync(etc("resolv.conf"), { force: true });
    symlinkSync("/run/NetworkManager/resolv.conf", etc("resolv.conf"));
    print("bake: /etc/resolv.conf → /run/NetworkManager/resolv.conf (read-only root)");
  } else if (!isSymlink(etc("resolv.conf"))) {
    print(
      "bake: warning: no NetworkManager in the image, /etc/resolv.conf stays a file on the read-only root (DNS will not follow DHCP)",
    );
  }
  mkdirSync(join(stage.dir, "usr/local/sbin"), { recursive: true });
  copyFileSync(join(HERE, "fieldrelay-grow-data.sh"), join(stage.dir, "usr/local/sbin/fieldrelay-grow-data"));
  chmodSync(join(stage.dir, "usr/local/sbin/fieldrelay-grow-data"), 0o755);
  mkdirSync(etc("systemd/system/multi-user.target.wants"), { recursive: true });
  copyFileSync(
    join(HERE, "fieldrelay-grow-data.service"),
    etc("systemd/system/fieldrelay-grow-data.service"),
  );
  chmodSync(etc("systemd/system/fieldrelay-grow-data.service"), 0o644);
  const wants = etc("systemd/system/multi-user.target.wants/fieldrelay-grow-data.service");
  if (!existsSync(wants) && !isSymlink(wants))
    symlinkSync("/etc/systemd/system/fieldrelay-grow-data.service", wants);
  mkdirSync(join(stage.dir, "var/lib/fieldrelay"), { recursive: true });
}

/** The data partition: ext4 owned by the fieldrelay user the installer created, journalled data. */
function makeDataPartition(partial: string, stage: Stage, layout: Layout) {
  const ids = userIds(readFileSync(join(stage.dir, "etc/passwd"), "utf8"), "fieldrelay");
  if (!ids)
    throw new BakeError("install.sh did not create the fieldrelay user in the image", {
      hint: "the bundle's install.sh is too old; rebuild it",
    });
  const data = makeExt4({
    image: partial,
    offsetBytes: layout.data.start * SECTOR,
    sizeBytes: layout.data.size * SECTOR,
    label: DATA_LABEL,
    rootOwner: ids,
  });
  exec(["tune2fs", "-o", "journal_data", data.spec]);
  return { ids, data };
}

/** Write what changed in the stage back into the root and boot file systems; returns how many entries. */
function writeBack(stage: Stage, img: BaseImage): number {
  const after = snapshot(stage.dir, stage.asr);
  const { before } = stage;
  const { changed, removed } = diffSnapshots(before, after);
  const isBoot = (p: string) => p === "boot" || p.startsWith("boot/");
  const rootChanged = changed.filter((e) => !isBoot(e.path));
  const parents = [
    ...new Set(
      rootChanged.filter((e) => !before.has(e.path)).map((e) => `/${dirname(e.path)}`.replace(/^\/\.$/, "/")),
    ),
  ];
  const existing = new Set<string>();
  for (const [dir, entries] of img.root.list(parents))
    for (const e of entries) existing.add(`${dir === "/" ? "" : `${dir.slice(1)}/`}${e.name}`);
  img.root.apply(
    ext4Commands(
      rootChanged,
      removed.filter((e) => !isBoot(e.path)),
      before,
      existing,
      stage.dir,
    ),
  );
  for (const e of changed.filter((x) => isBoot(x.path) && x.path.startsWith("boot/firmware/"))) {
    const rel = `/${e.path.slice("boot/firmware/".length)}`;
    if (e.type === "d") img.boot.mkdir(rel);
    else if (e.type === "f") img.boot.write(join(stage.dir, e.path), rel);
  }
  return changed.length;
}

/** Bake an image. Throws BakeError; never leaves <out> half-written. */
export function bake(opts: BakeOptions): BakeSummary {
  const t0 = performance.now();
  const print = opts.print ?? ((l: string) => process.stdout.write(`${l}\n`));
  const inputs = validate(opts);
  const { base, out } = inputs;
  const partial = join(dirname(out), `${basename(out)}.partial-${process.pid}`);
  const work = mkdtempSync(join(tmpdir(), "fieldrelay-bake-"));
  const cleanup = () => {
    rmSync(partial, { force: true });
    rmSync(work, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals) => {
    cleanup();
    process.stderr.write(`bake: interrupted (${sig}); removed ${partial}\n`);
    process.exit(128 + (sig === "SIGINT" ? 2 : 15));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const step = (name: string) => {
    if (opts.failAfter === name) throw new BakeError(`failing on purpose after step "${name}" (test hook)`);
  };
  try {
    print(`bake: ${base} → ${out}`);
    copyBase(base, partial);
    step("copy");
    const img = openBase(partial, inputs, opts.base);
    const { layout } = img;
    partition(partial, img, work);
    print(
      `bake: root ${formatSize(layout.root.size * SECTOR)} (+${formatSize(layout.root.grownBy)}), data ${formatSize(layout.data.size * SECTOR)} at sector ${layout.data.start}`,
    );
    step("partition");
    const stage = stageFiles(img, work);
    runInstaller(stage, inputs, print);
    step("install");
    deviceEdits(stage, img, inputs, print);
    const { ids, data } = makeDataPartition(partial, stage, layout);
    step("data");
    const written = writeBack(stage, img);
    step("write");
    img.root.check(false);
    data.check(false);
    img.boot.check();
    renameSync(partial, out);
    const seconds = (performance.now() - t0) / 1000;
    print(
      `bake: wrote ${written} files and directories; fieldrelay uid ${ids.uid} gid ${ids.gid}; data label ${DATA_LABEL} (journal_data); ro root; disk id ${layout.diskId}`,
    );
    print(`bake: done in ${seconds.toFixed(1)} s → ${out} (${formatSize(layout.imageBytes)})`);
    return { out, layout, fieldrelay: ids, written, seconds };
  } catch (error) {
    cleanup();
    throw error;
  } finally {
    rmSync(work, { recursive: true, force: true });
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** The CLI: parse with commander, print one line and exit 64 (usage) or 1 (bake failed). */
export function main(argv: string[]): number {
  const program = new Command("bake")
    .description("Bake a fieldrelay device image from a Raspberry Pi OS image (no root, no loop mounts)")
    .requiredOption("--base <image>", "Raspberry Pi OS Lite image (.img or .img.xz)")
    .requiredOption("--out <image>", "device image to write (never the base)")
    .option("--data-size <size>", "data partition size (grows to fill the card on first boot)", "1G")
    .option("--root-size <size>", "root partition size (default: the base's plus 1 GiB)")
    .option("--config <file>", "fieldrelay config to install as /etc/fieldrelay/config.toml")
    .option("--hostname <name>", "host name of the device")
    .option("--bundle <dir>", "bundle from npm run build", join(REPO, "dist/bundle"))
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse(argv, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : ExitCode.usage;
    throw error;
  }
  const o = program.opts<Omit<BakeOptions, "print" | "failAfter">>();
  try {
    bake({ ...o, failAfter: process.env.FIELDRELAY_BAKE_FAIL_AFTER });
    return 0;
  } catch (error) {
    process.stderr.write(`bake: ${describeError(error)}\n`);
    return error instanceof BakeError && /^--/.test(error.message) ? ExitCode.usage : 1;
  }
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));
