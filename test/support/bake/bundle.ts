/**
 * The bundle the baker's tests feed it: dist/bundle/ when `npm run build` wrote one with a real
 * install.sh, otherwise one assembled here from dist/fieldrelay-linux-arm64 and the repo's files
 * with a TEMPORARY install.sh stand-in (install-standin.sh) — until helper B's build/bundle.ts
 * and deploy/install.sh are merged.
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { DIST, REPO } from "../fieldrelay.ts";

const HERE = dirname(fileURLToPath(import.meta.url));

/** A fstab template with the contract's placeholders, for when deploy/device/ has none yet. */
export const TEST_FSTAB_TEMPLATE = `proc            /proc           proc    defaults                         0 0
@BOOT_DEV@  /boot/firmware  vfat    defaults,ro                      0 2
@ROOT_DEV@  /               ext4    defaults,noatime,ro              0 1
@DATA_DEV@  /var/lib/fieldrelay ext4 defaults,noatime,data=journal  0 2
tmpfs           /tmp            tmpfs   nosuid,nodev,mode=1777           0 0
`;

export interface TestBundle {
  dir: string;
  /** True when dist/bundle (the real install.sh) is used. */
  real: boolean;
}

export function testBundle(workDir: string): TestBundle {
  const dist = join(DIST, "bundle");
  if (existsSync(join(dist, "install.sh")) && existsSync(join(dist, "fieldrelay")))
    return { dir: dist, real: true };
  const dir = join(workDir, "bundle");
  const put = (rel: string, from: string | Buffer, mode = 0o644, copy = false) => {
    const to = join(dir, rel);
    mkdirSync(dirname(to), { recursive: true });
    if (copy) copyFileSync(from as string, to);
    else writeFileSync(to, from);
    if (mode) Bun.spawnSync(["chmod", mode.toString(8), to]);
  };
  put("install.sh", join(HERE, "install-standin.sh"), 0o755, true);
  put("fieldrelay", join(DIST, "fieldrelay-linux-arm64"), 0o755, true);
  put("config.example.toml", join(REPO, "deploy/config.example.toml"), 0o644, true);
  const unit = [
    join(REPO, "deploy/systemd/fieldrelay.service"),
    join(REPO, "deploy/fieldrelay.service"),
  ].find(existsSync);
  put("systemd/fieldrelay.service", unit as string, 0o644, true);
  put("overlays/config.txt", join(REPO, "overlays/config.txt"), 0o644, true);
  const dtbo = join(DIST, "fieldrelay-gpio.dtbo");
  put(
    "overlays/fieldrelay-gpio.dtbo",
    existsSync(dtbo) ? dtbo : Buffer.from([0xd0, 0x0d, 0xfe, 0xed]),
    0o644,
    existsSync(dtbo),
  );
  const fstab = join(REPO, "deploy/device/fstab.ro-root");
  put("device/fstab.ro-root", existsSync(fstab) ? fstab : TEST_FSTAB_TEMPLATE, 0o644, existsSync(fstab));
  put("VERSION", "fieldrelay 0.1.0 (test bundle)\n");
  return { dir, real: false };
}
