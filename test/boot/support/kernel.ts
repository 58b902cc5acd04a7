/**
 * Kernel and initramfs for booting the image under qemu-system-aarch64 -M virt.
 *
 * The kernel is Debian's arm64 one (the version linux-image-arm64 points at today), fetched with
 * `apt-get download` through a private apt state dir (arm64 package lists, no change to the host's
 * apt configuration or dpkg architectures) and unpacked with `dpkg-deb -x` — never installed in
 * the emulated chroot, whose initramfs-tools run alone takes many minutes.
 *
 * Debian builds ext4, vfat and virtio as modules, so a tiny busybox initramfs (ARM64
 * busybox-static, cpio newc + gzip) insmods them in dependency order, waits for /dev/vda2, mounts
 * it read-only and switch_roots to systemd. vfat is loaded too: the image's fstab mounts the FAT
 * boot partition at /boot/firmware, and the root has no /lib/modules to modprobe it from.
 */
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
import { join } from "node:path";
import { CACHE_DIR, cached, cacheKey } from "./cache.ts";
import { exec } from "./exec.ts";

/** insmod order: each module after the ones it needs (modinfo depends=). */
export const INITRAMFS_MODULES = [
  "lib/crc16",
  "fs/mbcache",
  "fs/jbd2/jbd2",
  "crypto/crc32c_generic",
  "lib/libcrc32c",
  "fs/ext4/ext4",
  "fs/fat/fat",
  "fs/fat/vfat",
  "fs/nls/nls_cp437",
  "fs/nls/nls_ascii",
  "drivers/virtio/virtio_pci_legacy_dev",
  "drivers/virtio/virtio_pci_modern_dev",
  "drivers/virtio/virtio_pci",
  "drivers/block/virtio_blk",
  // The crash suite (test/crash) logs and fails the data disk's writes with device-mapper targets.
  "drivers/dax/dax",
  "drivers/md/dm-mod",
  "drivers/md/dm-log-writes",
  "drivers/md/dm-flakey",
] as const;

export const INIT_SCRIPT = `#!/bin/sh
# fieldrelay boot-test initramfs: load ext4/vfat/virtio, mount /dev/vda2 read-only, hand over to systemd.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.list); do
  insmod "/modules/$m.ko" || echo "initramfs: insmod $m failed"
done
n=0
while [ ! -b /dev/vda2 ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
if ! mount -t ext4 -o ro /dev/vda2 /newroot; then
  echo "initramfs: cannot mount /dev/vda2; block devices:"; cat /proc/partitions
  exec sh
fi
umount /proc /sys /dev
exec switch_root /newroot /sbin/init
`;

const APT_SOURCE =
  "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main";

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

/** Resolves linux-image-arm64 to today's versioned kernel package and the busybox-static version. */
function resolvePackages(aptDir: string): {
  kernelPkg: string;
  kernelVersion: string;
  busyboxVersion: string;
} {
  for (const d of ["lists/partial", "cache/archives/partial", "sources.list.d"])
    mkdirSync(join(aptDir, d), { recursive: true });
  writeFileSync(join(aptDir, "status"), "");
  writeFileSync(join(aptDir, "sources.list"), `${APT_SOURCE}\n`);
  const opts = aptOptions(aptDir);
  exec(["apt-get", ...opts, "update"], { timeoutMs: 5 * 60_000 });
  const deps = exec(["apt-cache", ...opts, "depends", "linux-image-arm64"]);
  const kernelPkg = /Depends: (linux-image-[0-9][^\s]*-arm64)\b/.exec(deps)?.[1];
  if (!kernelPkg) throw new Error(`cannot resolve linux-image-arm64's kernel package from:\n${deps}`);
  const version = (pkg: string) => {
    const v = /^Version: (\S+)/m.exec(exec(["apt-cache", ...opts, "show", pkg]))?.[1];
    if (!v) throw new Error(`apt-cache show ${pkg} has no Version`);
    return v;
  };
  return { kernelPkg, kernelVersion: version(kernelPkg), busyboxVersion: version("busybox-static") };
}

export interface BootKernel {
  /** The kernel image (vmlinuz: an EFI-stub PE that qemu -kernel boots directly). */
  vmlinuz: string;
  initrd: string;
  /** e.g. linux-image-6.1.0-50-arm64 6.1.176-1 */
  release: string;
  hit: boolean;
}

export function bootKernel(): BootKernel {
  const aptDir = join(CACHE_DIR, "apt-arm64");
  mkdirSync(aptDir, { recursive: true });
  let resolved: ReturnType<typeof resolvePackages>;
  try {
    resolved = resolvePackages(aptDir);
  } catch (e) {
    // No mirror (offline laptop, flaky network): boot with the newest kernel already cached.
    const fallback = newestCachedKernel();
    if (!fallback) throw e;
    console.warn(
      `boot test: cannot ask the mirror (${String(e).split("\n")[0]}); using cached ${fallback.release}`,
    );
    return fallback;
  }
  const { kernelPkg, kernelVersion, busyboxVersion } = resolved;
  const key = cacheKey({ kernelPkg, kernelVersion, busyboxVersion, INITRAMFS_MODULES, INIT_SCRIPT });
  const { path, hit } = cached(`kernel-${key}`, (out) => {
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

      const root = join(work, "initramfs");
      for (const d of ["bin", "dev", "proc", "sys", "newroot", "modules"])
        mkdirSync(join(root, d), { recursive: true });
      copyFileSync(join(bdir, "bin", "busybox"), join(root, "bin", "busybox"));
      chmodSync(join(root, "bin", "busybox"), 0o755);
      exec(["ln", "-s", "busybox", join(root, "bin", "sh")]);
      // The kernel opens /dev/console before running /init; without the node /init has no stdout.
      exec(["mknod", "-m", "600", join(root, "dev", "console"), "c", "5", "1"]);
      const names: string[] = [];
      for (const m of INITRAMFS_MODULES) {
        const name = m.split("/").pop()!;
        const src = join(kdir, "lib", "modules", release, "kernel", `${m}.ko`);
        // busybox insmod cannot read compressed modules; Debian 12 ships plain .ko (.ko.xz would need unxz here).
        copyFileSync(src, join(root, "modules", `${name}.ko`));
        names.push(name);
      }
      writeFileSync(join(root, "modules.list"), `${names.join("\n")}\n`);
      writeFileSync(join(root, "init"), INIT_SCRIPT, { mode: 0o755 });
      exec(["sh", "-c", `find . | cpio -o -H newc -R 0:0 --quiet | gzip -6 > '${join(out, "initrd.gz")}'`], {
        cwd: root,
      });
      writeFileSync(join(out, "release"), `${kernelPkg} ${kernelVersion}\n`);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
  return {
    vmlinuz: join(path, "vmlinuz"),
    initrd: join(path, "initrd.gz"),
    release: `${kernelPkg} ${kernelVersion}`,
    hit,
  };
}

function newestCachedKernel(): BootKernel | undefined {
  if (!existsSync(CACHE_DIR)) return undefined;
  const dirs = readdirSync(CACHE_DIR)
    .filter((d) => /^kernel-[0-9a-f]+$/.test(d) && existsSync(join(CACHE_DIR, d, "release")))
    .map((d) => join(CACHE_DIR, d))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  const dir = dirs[0];
  if (!dir) return undefined;
  return {
    vmlinuz: join(dir, "vmlinuz"),
    initrd: join(dir, "initrd.gz"),
    release: readFileSync(join(dir, "release"), "utf8").trim(),
    hit: true,
  };
}
