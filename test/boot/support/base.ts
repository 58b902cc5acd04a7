/**
 * The Debian arm64 base the image is made from: a minbase of the host's release (bookworm) from the
 * host's configured Debian mirror (apt-sources.ts), with systemd, udev and the
 * programs a Raspberry Pi OS Lite root has that fieldrelay's boot path needs (mount, fsck.ext4,
 * sfdisk for the data-partition grow step, kmod). Built once with mmdebstrap into a tarball in
 * the cache, keyed by everything on the mmdebstrap command line.
 */

import { hostCodename, hostDebianArchive } from "./apt-sources.ts";
import { ensureArm64Binfmt } from "./binfmt.ts";
import { cached, cacheKey } from "./cache.ts";
import { exec } from "./exec.ts";

export const BASE = {
  variant: "minbase",
  include: ["systemd", "systemd-sysv", "udev", "util-linux", "e2fsprogs", "fdisk", "kmod"],
} as const;

/** What mmdebstrap is given: the host's release from the host's own mirror, and BASE. */
export function baseSpec(): { suite: string; mirror: string; variant: string; include: readonly string[] } {
  return {
    suite: hostCodename(),
    mirror: hostDebianArchive().uri,
    variant: BASE.variant,
    include: BASE.include,
  };
}

/** Path of the base rootfs tarball (owners, modes and device nodes preserved; extract as root). */
export function debianBase(): { tar: string; hit: boolean } {
  const spec = baseSpec();
  const key = cacheKey({ arch: "arm64", ...spec });
  const { path, hit } = cached(`base-${key}.tar`, (tmp) => {
    ensureArm64Binfmt();
    exec(
      [
        "mmdebstrap",
        "--arch=arm64",
        `--variant=${spec.variant}`,
        `--include=${spec.include.join(",")}`,
        "--format=tar",
        spec.suite,
        tmp,
        spec.mirror,
      ],
      { inherit: true, timeoutMs: 20 * 60_000 },
    );
  });
  return { tar: path, hit };
}
