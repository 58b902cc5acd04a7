/**
 * mmdebstrap runs the arm64 maintainer scripts through qemu-user via binfmt_misc. A fresh CI
 * machine may have binfmt-support installed without binfmt_misc mounted (containers) or with the
 * qemu-aarch64 entry disabled, so mount and enable them here; `arch-test arm64` is the proof.
 */
import { existsSync, readFileSync } from "node:fs";
import { exec } from "./exec.ts";

const BINFMT = "/proc/sys/fs/binfmt_misc";

function entryEnabled(): boolean {
  const entry = `${BINFMT}/qemu-aarch64`;
  return existsSync(entry) && readFileSync(entry, "utf8").startsWith("enabled");
}

export function ensureArm64Binfmt(): void {
  if (!existsSync(`${BINFMT}/register`)) exec(["mount", "-t", "binfmt_misc", "binfmt_misc", BINFMT]);
  if (!entryEnabled()) {
    // update-binfmts needs /var/lib/binfmts/qemu-aarch64, which qemu-user-static ships.
    exec(["update-binfmts", "--enable", "qemu-aarch64"]);
  }
  try {
    exec(["arch-test", "arm64"]);
  } catch (e) {
    throw new Error(
      `arm64 programs do not run on this host even after enabling binfmt (${String(e)}); ` +
        "install qemu-user-static binfmt-support arch-test and check /proc/sys/fs/binfmt_misc/qemu-aarch64 has the F flag",
    );
  }
}
