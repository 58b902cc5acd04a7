/**
 * The Debian arm64 base the image is made from: a minbase bookworm with systemd, udev and the
 * programs a Raspberry Pi OS Lite root has that fieldrelay's boot path needs (mount, fsck.ext4,
 * sfdisk for the data-partition grow step, kmod). Built once with mmdebstrap into a tarball in
 * the cache, keyed by everything on the mmdebstrap command line.
 */

import { ensureArm64Binfmt } from "./binfmt.ts";
import { cached, cacheKey } from "./cache.ts";
import { exec } from "./exec.ts";

export const BASE = {
  suite: "bookworm",
  mirror: "http://deb.debian.org/debian",
  variant: "minbase",
  // dmsetup: the crash suite (test/crash) puts the data disk under dm-log-writes / dm-flakey.
  include: ["systemd", "systemd-sysv", "udev", "util-linux", "e2fsprogs", "fdisk", "kmod", "dmsetup"],
} as const;

/** Path of the base rootfs tarball (owners, modes and device nodes preserved; extract as root). */
export function debianBase(): { tar: string; hit: boolean } {
  const key = cacheKey({ arch: "arm64", ...BASE });
  const { path, hit } = cached(`base-${key}.tar`, (tmp) => {
    ensureArm64Binfmt();
    exec(
      [
        "mmdebstrap",
        "--arch=arm64",
        `--variant=${BASE.variant}`,
        `--include=${BASE.include.join(",")}`,
        "--format=tar",
        BASE.suite,
        tmp,
        BASE.mirror,
      ],
      { inherit: true, timeoutMs: 20 * 60_000 },
    );
  });
  return { tar: path, hit };
}
