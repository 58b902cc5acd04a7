/**
 * Kernels and initramfs images for the boot matrix, one per KernelSpec:
 *   - VIRT_KERNEL: Debian's arm64 kernel (4 KiB pages) of the host's release, for -M virt;
 *   - VIRT_16K_KERNEL: Debian's linux-image-arm64-16k (16 KiB pages, the Pi 5's default page
 *     size), which Debian builds from trixie on, for -M virt -cpu cortex-a76;
 *   - RASPI3B_KERNEL: the same arm64 kernel as VIRT_KERNEL booted on -M raspi3b with its
 *     bcm2837-rpi-3-b.dtb, the SD card behind the sdhost/sdhci drivers.
 *
 * The packages are fetched with `apt-get download` through a private apt state dir (arm64 package
 * lists, no change to the host's apt configuration or dpkg architectures) whose one source is the
 * host's own configured Debian archive (apt-sources.ts) with the spec's suite, and unpacked with
 * `dpkg-deb -x` — never installed in an emulated chroot, whose initramfs-tools run alone takes
 * many minutes.
 *
 * Debian builds ext4, vfat, virtio and the Pi's MMC hosts as modules, so a tiny busybox initramfs
 * (ARM64 busybox-static, cpio newc + gzip) insmods the spec's modules after their dependencies
 * (read from each module's .modinfo `depends=`; modules built in are skipped; trixie's .ko.xz are
 * decompressed here because busybox insmod reads only plain .ko), waits for the root device,
 * mounts it read-only and switch_roots to `fieldrelay.init=` from the kernel command line
 * (default /sbin/init, i.e. systemd). vfat is loaded too: the image's fstab mounts the FAT boot
 * partition at /boot/firmware, and the root has no /lib/modules to modprobe it from.
 */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { type DebianArchive, hostCodename, hostDebianArchive, sourceLine } from "./apt-sources.ts";
import { CACHE_DIR, cached, cacheKey } from "./cache.ts";
import { exec } from "./exec.ts";

export interface KernelSpec {
  /** Short name, used in cache entry names and logs. */
  name: string;
  /** The Debian suite the packages come from (through the host's configured archive). */
  suite: string;
  /** The metapackage that points at today's kernel, e.g. linux-image-arm64. */
  meta: string;
  /** Module names the initramfs loads (dependencies are added before each). */
  modules: readonly string[];
  /** The root block device the initramfs mounts read-only. */
  root: string;
  /** Device trees to copy out of the package (relative to usr/lib/linux-image-<release>/). */
  dtbs?: readonly string[];
}

const FS_MODULES = ["crc32c_generic", "ext4", "vfat", "nls_cp437", "nls_ascii"] as const;

/** The host release's arm64 kernel on -M virt: a virtio disk, /dev/vda2 is the image's root. */
export function virtKernelSpec(): KernelSpec {
  return {
    name: "virt",
    suite: hostCodename(),
    meta: "linux-image-arm64",
    modules: [...FS_MODULES, "virtio_pci", "virtio_blk", "virtio_net"],
    root: "/dev/vda2",
  };
}

/** Debian's 16 KiB-page kernel (built from trixie on) on -M virt -cpu cortex-a76. */
export const VIRT_16K_KERNEL: KernelSpec = {
  name: "virt-16k",
  suite: "trixie",
  meta: "linux-image-arm64-16k",
  modules: [...FS_MODULES, "virtio_pci", "virtio_blk", "virtio_net"],
  root: "/dev/vda2",
};

export const RASPI3B_DTB = "broadcom/bcm2837-rpi-3-b.dtb";

/** The host release's arm64 kernel on -M raspi3b: the SD card (an unpartitioned ext4) is the root. */
export function raspi3bKernelSpec(): KernelSpec {
  return {
    name: "raspi3b",
    suite: hostCodename(),
    meta: "linux-image-arm64",
    // bcm2835 is the sdhost driver, sdhci-iproc the Arasan one; QEMU wires the card to whichever
    // the GPIO48-53 pin functions select.
    modules: [...FS_MODULES, "bcm2835", "sdhci-iproc"],
    root: "/dev/mmcblk0",
    dtbs: [RASPI3B_DTB],
  };
}

export function initScript(root: string): string {
  return `#!/bin/sh
# fieldrelay boot-test initramfs: load the modules, mount ${root} read-only, hand over to
# fieldrelay.init= from the kernel command line (default /sbin/init).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.list); do
  insmod "/modules/$m.ko" || echo "initramfs: insmod $m failed"
done
init=/sbin/init
for w in $(cat /proc/cmdline); do case "$w" in fieldrelay.init=*) init="\${w#fieldrelay.init=}";; esac; done
n=0
while [ ! -b ${root} ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
if ! mount -t ext4 -o ro ${root} /newroot; then
  echo "initramfs: cannot mount ${root}; block devices:"; cat /proc/partitions
  exec sh
fi
umount /proc /sys /dev
exec switch_root /newroot "$init"
`;
}

/** apt-get/apt-cache options for a throwaway arm64 apt state under dir. */
function aptOptions(dir: string): string[] {
  const o = (k: string, v: string) => ["-o", `${k}=${v}`];
  return [
    ...o("APT::Architecture", "arm64"),
    ...o("APT::Architectures::", "arm64"),
    ...o("Dir::State::Lists", join(dir, "lists")),
    ...o("Dir::State::status", join(dir, "status")),
    ...o("Dir::Cache", join(dir, "cache")),
    ...o("Dir::Etc::SourceList", join(dir, "sources.list")),
    ...o("Dir::Etc::SourceParts", join(dir, "sources.list.d")),
    ...o("Debug::NoLocking", "1"),
    // apt drops to _apt for downloads, which cannot write into a root-owned temp dir.
    ...o("APT::Sandbox::User", "root"),
  ];
}

/** The versioned kernel package a metapackage depends on, from `apt-cache depends` output. */
export function kernelPackageFrom(meta: string, depends: string): string | undefined {
  const flavour = meta.replace(/^linux-image-/, ""); // arm64, arm64-16k
  const re = new RegExp(`Depends: (linux-image-[0-9]\\S*-${flavour.replace(/[-]/g, "\\-")})$`, "m");
  return re.exec(depends)?.[1];
}

/** Resolves the spec's metapackage to today's versioned kernel package and busybox-static. */
function resolvePackages(
  aptDir: string,
  spec: KernelSpec,
  archive: DebianArchive,
): { kernelPkg: string; kernelVersion: string; busyboxVersion: string } {
  for (const d of ["lists/partial", "cache/archives/partial", "sources.list.d"])
    mkdirSync(join(aptDir, d), { recursive: true });
  writeFileSync(join(aptDir, "status"), "");
  writeFileSync(join(aptDir, "sources.list"), `${sourceLine(archive, spec.suite)}\n`);
  const opts = aptOptions(aptDir);
  exec(["apt-get", ...opts, "update"], { timeoutMs: 5 * 60_000 });
  const deps = exec(["apt-cache", ...opts, "depends", spec.meta]);
  const kernelPkg = kernelPackageFrom(spec.meta, deps);
  if (!kernelPkg) throw new Error(`cannot resolve ${spec.meta}'s kernel package from:\n${deps}`);
  const version = (pkg: string) => {
    const v = /^Version: (\S+)/m.exec(exec(["apt-cache", ...opts, "show", pkg]))?.[1];
    if (!v) throw new Error(`apt-cache show ${pkg} has no Version`);
    return v;
  };
  return { kernelPkg, kernelVersion: version(kernelPkg), busyboxVersion: version("busybox-static") };
}

/** A module's `depends=` list from its .modinfo strings. */
export function moduleDepends(ko: Buffer): string[] {
  const marker = Buffer.from("depends=");
  for (let at = ko.indexOf(marker); at >= 0; at = ko.indexOf(marker, at + 1)) {
    if (at > 0 && ko[at - 1] !== 0) continue;
    const end = ko.indexOf(0, at);
    const value = ko.subarray(at + marker.length, end < 0 ? undefined : end).toString("latin1");
    return value.split(",").filter(Boolean);
  }
  return [];
}

const norm = (name: string) => name.replace(/-/g, "_");

/** Reads a .ko or .ko.xz into memory, decompressed. */
function readModule(path: string): Buffer {
  if (!path.endsWith(".xz")) return readFileSync(path);
  const r = spawnSync("xz", ["-dc", path], { maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0)
    throw new Error(`xz -dc ${path} failed (exit ${r.status}): ${r.stderr} (install xz-utils)`);
  return r.stdout;
}

/**
 * The insmod order for wanted: every module after its dependencies, built-in ones left out.
 * Returns [name, decompressed module] pairs.
 */
function resolveModules(modDir: string, wanted: readonly string[]): Array<[string, Buffer]> {
  const files = new Map<string, string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ko(\.xz)?$/.test(e.name)) files.set(norm(e.name.replace(/\.ko(\.xz)?$/, "")), p);
    }
  };
  walk(join(modDir, "kernel"));
  const builtin = new Set(
    readFileSync(join(modDir, "modules.builtin"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => norm(basename(l).replace(/\.ko$/, ""))),
  );
  const order: Array<[string, Buffer]> = [];
  const seen = new Set<string>();
  const visit = (raw: string) => {
    const name = norm(raw);
    if (seen.has(name) || builtin.has(name)) return;
    seen.add(name);
    const file = files.get(name);
    if (!file) throw new Error(`kernel module ${raw} is neither built in nor under ${modDir}/kernel`);
    const ko = readModule(file);
    for (const dep of moduleDepends(ko)) visit(dep);
    order.push([name, ko]);
  };
  for (const m of wanted) visit(m);
  return order;
}

export interface BootKernel {
  /** The kernel image (vmlinuz: an EFI-stub PE that qemu -kernel boots directly). */
  vmlinuz: string;
  initrd: string;
  /** Device trees by their path in the package (spec.dtbs), when the spec asked for any. */
  dtbs: Record<string, string>;
  /** e.g. linux-image-6.1.0-50-arm64 6.1.176-1 */
  release: string;
  hit: boolean;
}

/** Kernel + initramfs (+ device trees) for spec, built once and cached; VIRT_KERNEL by default. */
export function bootKernel(spec: KernelSpec = virtKernelSpec()): BootKernel {
  const aptDir = join(CACHE_DIR, `apt-arm64-${spec.suite}`);
  mkdirSync(aptDir, { recursive: true });
  let resolved: ReturnType<typeof resolvePackages>;
  try {
    resolved = resolvePackages(aptDir, spec, hostDebianArchive());
  } catch (e) {
    // No mirror (offline laptop, flaky network): boot with the newest kernel already cached.
    const fallback = newestCachedKernel(spec);
    if (!fallback) throw e;
    console.warn(
      `boot test: cannot ask the mirror (${String(e).split("\n")[0]}); using cached ${fallback.release}`,
    );
    return fallback;
  }
  const { kernelPkg, kernelVersion, busyboxVersion } = resolved;
  const init = initScript(spec.root);
  const key = cacheKey({ spec, kernelPkg, kernelVersion, busyboxVersion, init });
  const { path, hit } = cached(`kernel-${spec.name}-${key}`, (out) => {
    const work = mkdtempSync(join(tmpdir(), "fieldrelay-kernel-"));
    try {
      exec(["apt-get", ...aptOptions(aptDir), "download", kernelPkg, "busybox-static"], {
        cwd: work,
        timeoutMs: 10 * 60_000,
      });
      const debs = readdirSync(work).filter((f) => f.endsWith(".deb"));
      const deb = (prefix: string) => {
        const f = debs.find((d) => d.startsWith(prefix));
        if (!f) throw new Error(`apt-get download left no ${prefix}*.deb in ${work}`);
        return join(work, f);
      };
      const kdir = join(work, "kernel");
      const bdir = join(work, "busybox");
      exec(["dpkg-deb", "-x", deb(`${kernelPkg}_`), kdir]);
      exec(["dpkg-deb", "-x", deb("busybox-static_"), bdir]);
      const release = kernelPkg.replace(/^linux-image-/, "");

      mkdirSync(out);
      copyFileSync(join(kdir, "boot", `vmlinuz-${release}`), join(out, "vmlinuz"));
      for (const dtb of spec.dtbs ?? []) {
        copyFileSync(join(kdir, "usr/lib", `linux-image-${release}`, dtb), join(out, basename(dtb)));
      }

      const root = join(work, "initramfs");
      for (const d of ["bin", "dev", "proc", "sys", "newroot", "modules"])
        mkdirSync(join(root, d), { recursive: true });
      const busybox = ["bin/busybox", "usr/bin/busybox"].map((p) => join(bdir, p)).find(existsSync);
      if (!busybox) throw new Error(`busybox-static unpacked to ${bdir} has no busybox binary`);
      copyFileSync(busybox, join(root, "bin", "busybox"));
      chmodSync(join(root, "bin", "busybox"), 0o755);
      exec(["ln", "-s", "busybox", join(root, "bin", "sh")]);
      // The kernel opens /dev/console before running /init; without the node /init has no stdout.
      exec(["mknod", "-m", "600", join(root, "dev", "console"), "c", "5", "1"]);
      // Debian 12 keeps modules in /lib/modules, Debian 13 (merged /usr) in /usr/lib/modules.
      const modDir = ["lib/modules", "usr/lib/modules"]
        .map((p) => join(kdir, p, release))
        .find((p) => existsSync(p));
      if (!modDir) throw new Error(`${kernelPkg} has no modules directory for ${release}`);
      const names: string[] = [];
      for (const [name, ko] of resolveModules(modDir, spec.modules)) {
        writeFileSync(join(root, "modules", `${name}.ko`), ko);
        names.push(name);
      }
      writeFileSync(join(root, "modules.list"), `${names.join("\n")}\n`);
      writeFileSync(join(root, "init"), init, { mode: 0o755 });
      exec(["sh", "-c", `find . | cpio -o -H newc -R 0:0 --quiet | gzip -6 > '${join(out, "initrd.gz")}'`], {
        cwd: root,
      });
      writeFileSync(join(out, "release"), `${kernelPkg} ${kernelVersion}\n`);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
  return kernelAt(path, spec, `${kernelPkg} ${kernelVersion}`, hit);
}

function kernelAt(dir: string, spec: KernelSpec, release: string, hit: boolean): BootKernel {
  const dtbs: Record<string, string> = {};
  for (const dtb of spec.dtbs ?? []) dtbs[dtb] = join(dir, basename(dtb));
  return { vmlinuz: join(dir, "vmlinuz"), initrd: join(dir, "initrd.gz"), dtbs, release, hit };
}

function newestCachedKernel(spec: KernelSpec): BootKernel | undefined {
  if (!existsSync(CACHE_DIR)) return undefined;
  const prefix = `kernel-${spec.name}-`;
  const dirs = readdirSync(CACHE_DIR)
    .filter((d) => d.startsWith(prefix) && /^[0-9a-f]+$/.test(d.slice(prefix.length)))
    .map((d) => join(CACHE_DIR, d))
    .filter((d) => existsSync(join(d, "release")))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  const dir = dirs[0];
  if (!dir) return undefined;
  return kernelAt(dir, spec, readFileSync(join(dir, "release"), "utf8").trim(), true);
}
