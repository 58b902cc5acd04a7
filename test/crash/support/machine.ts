/**
 * The crash suite's emulated device: the boot test's Debian arm64 base (with dmsetup) and kernel
 * (its initramfs also loading dm-log-writes and dm-flakey), shaped like Raspberry Pi OS and baked with
 * fieldrelay, plus the crash files (guest.ts) and extra virtio disks found by serial. The disks'
 * ext4 file systems are made here, so the replayer knows exactly what the device held when each
 * dm target was created.
 */
import { spawn } from "node:child_process";
import { appendFileSync, copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { debianBase } from "../../boot/support/base.ts";
import { ensureArm64Binfmt } from "../../boot/support/binfmt.ts";
import { exec, timed, timedAsync } from "../../boot/support/exec.ts";
import { bootKernel, type KernelSpec, virtKernelSpec } from "../../boot/support/kernel.ts";
import { qemuAppend, qemuArgs } from "../../boot/support/qemu.ts";
import { REPO } from "../../support/fieldrelay.ts";
import { makePiImage } from "../../support/pi-image.ts";
import { addCrashFiles, CRASH_CONFIG, DISKS, type DiskName } from "./guest.ts";

const BOOT_START_BYTES = 8192 * 512;

/** The boot test's -M virt kernel, its initramfs also loading the device-mapper targets (dm-mod and dax come as their dependencies). */
export function crashKernelSpec(): KernelSpec {
  const virt = virtKernelSpec();
  return { ...virt, name: "virt-dm", modules: [...virt.modules, "dm_log_writes", "dm_flakey"] };
}

export interface CrashMachine {
  image: string;
  vmlinuz: string;
  initrd: string;
  append: string;
  disks: Record<DiskName, string>;
  /** Pristine copies of the disks that sit under dm-log-writes (the replay base). */
  bases: { crash: string; broken: string };
  kernelRelease: string;
}

/** An empty ext4 shaped like the baker's data partition (4 KiB blocks, journal_data default), fully initialised. */
export function makeDataDisk(path: string, mib: number, label: string): void {
  rmSync(path, { force: true });
  exec(["truncate", "-s", `${mib}M`, path]);
  // No lazy init: the kernel's ext4lazyinit would zero inode tables in the background after the
  // first mount — megabytes of writes that are not fieldrelay's (they swamped the bench figures).
  exec([
    ...["mkfs.ext4", "-q", "-F", "-b", "4096", "-T", "default", "-L", label],
    ...["-E", "lazy_itable_init=0,lazy_journal_init=0", path],
  ]);
  exec(["tune2fs", "-o", "journal_data", path]);
}

export async function prepareMachine(o: {
  work: string;
  bundle: string;
  workloadJs: string;
  scale: number;
  benchSeconds: number;
  logMiB: number;
  timings: Record<string, number>;
}): Promise<CrashMachine> {
  ensureArm64Binfmt();
  const base = timed(o.timings, "base", () => debianBase());
  const kernel = timed(o.timings, "kernel", () => bootKernel(crashKernelSpec()));
  const baseImage = join(o.work, "raspios-shaped.img");
  const image = join(o.work, "device.img");
  await timedAsync(o.timings, "shape", async () => {
    const rootfs = join(o.work, "rootfs");
    mkdirSync(rootfs);
    exec(["tar", "-xf", base.tar, "-C", rootfs]);
    addCrashFiles(rootfs, { workload: o.workloadJs, scale: o.scale, benchSeconds: o.benchSeconds });
    await makePiImage({ out: baseImage, rootfsDir: rootfs, bootSizeMiB: 64 });
    rmSync(rootfs, { recursive: true, force: true });
  });
  timed(o.timings, "bake", () => {
    const config = join(o.work, "config.toml");
    writeFileSync(config, CRASH_CONFIG);
    exec(
      [
        process.execPath,
        join(REPO, "deploy/image/bake.ts"),
        ...["--base", baseImage, "--out", image, "--data-size", "64M", "--config", config],
        ...["--hostname", "crash-pi", "--bundle", o.bundle],
      ],
      { cwd: REPO },
    );
    rmSync(baseImage, { force: true });
  });
  const cmdline = exec(["mtype", "-i", `${image}@@${BOOT_START_BYTES}`, "::cmdline.txt"]);
  const disks = {} as Record<DiskName, string>;
  for (const [name, mib] of Object.entries(DISKS) as Array<[DiskName, number]>) {
    const path = join(o.work, `${name}.img`);
    disks[name] = path;
    if (name.endsWith("-data")) makeDataDisk(path, mib, name);
    else exec(["truncate", "-s", `${name === "crash-log" ? o.logMiB : mib}M`, path]);
  }
  const bases = { crash: join(o.work, "crash-data.base"), broken: join(o.work, "broken-data.base") };
  copyFileSync(disks["crash-data"], bases.crash);
  copyFileSync(disks["broken-data"], bases.broken);
  return {
    image,
    vmlinuz: kernel.vmlinuz,
    initrd: kernel.initrd,
    append: qemuAppend(cmdline),
    disks,
    bases,
    kernelRelease: kernel.release,
  };
}

export interface RunResult {
  log: string;
  exitCode: number | null;
  timedOut: boolean;
  seconds: number;
}

/** Boots the machine with its disks; resolves when the guest powers off (or on timeout). */
export function runMachine(m: CrashMachine, timeoutMs: number, logFile: string): Promise<RunResult> {
  const args = qemuArgs({
    image: m.image,
    vmlinuz: m.vmlinuz,
    initrd: m.initrd,
    append: m.append,
    timeoutMs,
    logFile,
    memMiB: 1024,
    smp: 2,
  });
  // The image must be the first virtio disk (vda: the initramfs mounts /dev/vda2), and explicit
  // -device disks are numbered before if=virtio ones: declare it the same way, first.
  const drive = args.indexOf(`file=${m.image},format=raw,if=virtio`);
  args.splice(drive - 1, 2);
  args.push("-drive", `file=${m.image},format=raw,if=none,id=root`, "-device", "virtio-blk-pci,drive=root");
  for (const [name, path] of Object.entries(m.disks)) {
    args.push("-drive", `file=${path},format=raw,if=none,id=${name},cache=unsafe`);
    args.push("-device", `virtio-blk-pci,drive=${name},serial=${name}`);
  }
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn("qemu-system-aarch64", args, { stdio: ["ignore", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    let timedOut = false;
    // Written as it comes, so a long run can be followed with tail -f.
    writeFileSync(logFile, "");
    const keep = (b: Buffer) => {
      chunks.push(b);
      appendFileSync(logFile, b);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      const log = Buffer.concat(chunks).toString("utf8").replace(/\r/g, "");
      resolve({ log, exitCode: code, timedOut, seconds: Math.round((performance.now() - t0) / 100) / 10 });
    });
  });
}

/** The guest's /run/crash, from the tar it wrote onto the results disk. */
export function readResults(m: CrashMachine, dir: string): void {
  mkdirSync(dir, { recursive: true });
  exec(["tar", "-xf", m.disks.results, "-C", dir]);
}
