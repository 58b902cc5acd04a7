/**
 * The baked image boots for real: Debian arm64 base shaped like Raspberry Pi OS, baked, booted
 * under qemu-system-aarch64 -M virt -cpu cortex-a53 with Debian's kernel, under real systemd.
 * Everything is asserted from the guest's one report line (test/boot/support/guest.ts).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { binaryMissing, DIST, REPO } from "../support/fieldrelay.ts";
import { makePiImage } from "../support/pi-image.ts";
import { missing } from "../support/tools.ts";
import { debianBase } from "./support/base.ts";
import { ensureArm64Binfmt } from "./support/binfmt.ts";
import { exec, timed, timedAsync } from "./support/exec.ts";
import { addBootTestFiles, GUEST_CONFIG } from "./support/guest.ts";
import { bootKernel } from "./support/kernel.ts";
import { type BootResult, bootImage, qemuAppend, tail } from "./support/qemu.ts";
import { type BootReport, parseReport } from "./support/report.ts";
import { BOOT_TOOLS } from "./support/tools.ts";

const BOOT_START_BYTES = 8192 * 512;
// FIELDRELAY_BOOT_BUNDLE bakes another bundle (e.g. one with an edited unit) without rebuilding.
const BUNDLE = process.env.FIELDRELAY_BOOT_BUNDLE ?? join(DIST, "bundle");
const DATA_MIB = 128;
const GROW_MIB = 256;
const BOOT_TIMEOUT_MS = 6 * 60_000;

const skip = missing(...BOOT_TOOLS) ?? binaryMissing("arm64") ?? bundleMissing() ?? notRoot();

describe.skipIf(skip !== undefined)("Baked image boot under qemu-system-aarch64", () => {
  const timings: Record<string, number> = {};
  let work = "";
  let cmdline = "";
  let boot: BootResult;
  let report: BootReport | undefined;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "fieldrelay-boot-"));
    // mmdebstrap and the baker's install.sh (check-config with the arm64 binary) run arm64 code.
    ensureArm64Binfmt();
    const base = timed(timings, "base", () => debianBase());
    const kernel = timed(timings, "kernel", () => bootKernel());
    const baseImage = join(work, "raspios-shaped.img");
    const image = join(work, "device.img");
    await timedAsync(timings, "shape", async () => {
      const rootfs = join(work, "rootfs");
      exec(["mkdir", rootfs]);
      exec(["tar", "-xf", base.tar, "-C", rootfs]);
      addBootTestFiles(rootfs, BUNDLE);
      await makePiImage({ out: baseImage, rootfsDir: rootfs, bootSizeMiB: 512 });
      rmSync(rootfs, { recursive: true, force: true });
    });
    timed(timings, "bake", () => {
      const config = join(work, "config.toml");
      writeFileSync(config, GUEST_CONFIG);
      exec(
        [
          process.execPath,
          join(REPO, "deploy/image/bake.ts"),
          "--base",
          baseImage,
          "--out",
          image,
          "--data-size",
          `${DATA_MIB}M`,
          "--config",
          config,
          "--hostname",
          "boot-test-pi",
          "--bundle",
          BUNDLE,
        ],
        { cwd: REPO },
      );
      rmSync(baseImage, { force: true });
    });
    // A card bigger than the image: the baker's first-boot step must grow the data partition.
    exec(["truncate", "-s", `+${GROW_MIB}M`, image]);
    cmdline = exec(["mtype", "-i", `${image}@@${BOOT_START_BYTES}`, "::cmdline.txt"]);
    boot = await bootImage({
      image,
      vmlinuz: kernel.vmlinuz,
      initrd: kernel.initrd,
      append: qemuAppend(cmdline),
      timeoutMs: BOOT_TIMEOUT_MS,
      logFile: join(tmpdir(), "fieldrelay-boot-serial.log"),
    });
    timings.boot = boot.seconds;
    report = parseReport(boot.log);
    console.log(
      `boot test: kernel ${kernel.release}; base ${base.hit ? "cached" : "built"} ${timings.base}s, kernel+initramfs ${
        kernel.hit ? "cached" : "built"
      } ${timings.kernel}s, shape ${timings.shape}s, bake ${timings.bake}s, qemu ${timings.boot}s; READY at ${readySeconds(report)}s after boot`,
    );
  }, 20 * 60_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  function reported(): BootReport {
    if (!report) {
      throw new Error(
        `no FIELDRELAY-BOOT-REPORT line (${boot.timedOut ? `killed after ${BOOT_TIMEOUT_MS / 1000}s` : `qemu exit ${boot.exitCode}`}); full log in ${join(tmpdir(), "fieldrelay-boot-serial.log")}; serial tail:\n${tail(boot.log)}`,
      );
    }
    return report;
  }

  it("the baked cmdline.txt mounts root read-only", () => {
    expect(cmdline.trim().split(/\s+/)).toContain("ro");
  });

  it("boots, reports and powers itself off before the timeout", () => {
    reported();
    expect(boot.timedOut).toBe(false);
    expect(boot.exitCode).toBe(0);
  });

  it("fieldrelay reaches READY through sd_notify and stays active", () => {
    const r = reported();
    // Type=notify: systemd enters active/running only on READY=1 from the main process.
    expect(r["unit.Type"]).toBe("notify");
    expect(r["unit.NotifyAccess"]).toBe("main");
    expect(r["first.ActiveState"], fieldrelayLines(boot.log)).toBe("active");
    expect(r["first.SubState"]).toBe("running");
    expect(r["second.ActiveState"]).toBe("active");
    expect(Number(r["first.ActiveEnterTimestampMonotonic"])).toBeGreaterThan(0);
    expect(r["first.StatusText"]).not.toBe("");
    expect(r["second.MainPID"]).toBe(r["first.MainPID"]);
  });

  it("feeds the watchdog: WatchdogTimestamp advances across a full WatchdogSec, no restart", () => {
    const r = reported();
    const wdUsec = Number(r.watchdog_usec);
    expect(wdUsec).toBeGreaterThan(0);
    const elapsedS = Number(r["second.uptime_s"]) - Number(r["first.uptime_s"]);
    expect(elapsedS * 1e6).toBeGreaterThan(wdUsec);
    expect(Number(r["second.WatchdogTimestampMonotonic"]), fieldrelayLines(boot.log)).toBeGreaterThan(
      Number(r["first.WatchdogTimestampMonotonic"]),
    );
    expect(r["second.NRestarts"], fieldrelayLines(boot.log)).toBe("0");
    expect(r["second.Result"]).toBe("success");
  });

  it("runs with the host name the baker set", () => {
    expect(reported()["system.hostname"]).toBe("boot-test-pi");
  });

  it("mounts root read-only", () => {
    expect(reported()["root.options"]?.split(",")).toContain("ro");
  });

  it("journals the data partition (data=journal in /proc/fs/ext4/<dev>/options)", () => {
    const r = reported();
    expect(r["data.source"]).not.toBe("");
    expect(r["data.ext4_options"]?.split(",")).toContain("data=journal");
    expect(r["data.mount_options"]?.split(",")).toContain("rw");
    expect(r["data.files"]).toContain("queue.db");
  });

  it("grows the data partition to fill a disk bigger than the image on first boot", () => {
    const r = reported();
    expect(r["grow.ActiveState"]).toBe("active");
    expect(r["grow.Result"]).toBe("success");
    // File system size, so less than the partition (journal, inode tables): ungrown it is < DATA_MIB.
    expect(Number(r["data.size_bytes"])).toBeGreaterThan((DATA_MIB + GROW_MIB * 0.75) * 1024 * 1024);
    expect(r["data.files"]).toContain(".fieldrelay-data-grown");
  });

  it("install.sh re-run live under systemd changes nothing, keeps the service running, leaves / read-only", () => {
    const r = reported();
    expect(r["rerun.exit"], r["rerun.log"]).toBe("0");
    expect(r["rerun.same_pid"], r["rerun.log"]).toBe("yes");
    expect(Number(r["rerun.unchanged_lines"]), r["rerun.log"]).toBeGreaterThanOrEqual(5);
    // Nothing is written again: not the binary, nor the overlay on the FAT boot partition.
    expect(r["rerun.installed_lines"], r["rerun.log"]).toBe("0");
    expect(r["rerun.root_options"]?.split(",")).toContain("ro");
  });

  it("install.sh rolls back a build that never becomes ready under systemd, and / is read-only again", () => {
    const r = reported();
    expect(r["broken.exit"], r["broken.log"]).not.toBe("0");
    expect(r["broken.log"]).toMatch(/did not become ready/);
    expect(r["broken.binary_restored"], r["broken.log"]).toBe("yes");
    expect(r["broken.ActiveState"], r["broken.log"]).toBe("active");
    expect(r["broken.root_options"]?.split(",")).toContain("ro");
  });

  it("stops cleanly on systemctl stop: exit 0 after SIGTERM, never SIGKILL", () => {
    const r = reported();
    expect(r["stop.ActiveState"]).toBe("inactive");
    expect(r["stop.Result"], fieldrelayLines(boot.log)).toBe("success");
    // ExecMainCode 1 = CLD_EXITED (2 would be CLD_KILLED by a signal).
    expect(r["stop.ExecMainCode"]).toBe("1");
    expect(r["stop.ExecMainStatus"]).toBe("0");
    expect(r["stop.kill_messages"]).toBe("0");
    expect(Number(r["stop.seconds"])).toBeLessThan(30);
  });
});

function readySeconds(r: BootReport | undefined): string {
  const us = Number(r?.["first.ActiveEnterTimestampMonotonic"]);
  return Number.isFinite(us) && us > 0 ? (us / 1e6).toFixed(1) : "?";
}

/** The baker installs dist/bundle (written by npm run build); under CI it must be there. */
function bundleMissing(): string | undefined {
  if (existsSync(join(BUNDLE, "install.sh"))) return undefined;
  const reason = `${BUNDLE} is not built (run npm run build)`;
  if (process.env.CI === "true") throw new Error(reason);
  return reason;
}

/** mmdebstrap into a tar and the initramfs's /dev/console node need root; CI runs as root. */
function notRoot(): string | undefined {
  if (process.getuid?.() === 0) return undefined;
  const reason = "needs root (mmdebstrap, device nodes in the initramfs)";
  if (process.env.CI === "true") throw new Error(`CI=true but ${reason}`);
  return reason;
}

/** fieldrelay's own lines and systemd's verdicts from the serial log: why a check failed. */
function fieldrelayLines(log: string, lines = 25): string {
  const picked = log
    .split("\n")
    .filter((l) => /fieldrelay\[\d+\]|fieldrelay\.service|FAILED|watchdog/i.test(l));
  return `fieldrelay on the serial console (last ${lines} lines):\n${picked.slice(-lines).join("\n")}`;
}
