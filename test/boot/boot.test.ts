/**
 * The baked image boots for real: Debian arm64 base shaped like Raspberry Pi OS, baked, booted
 * under qemu-system-aarch64 -M virt -cpu cortex-a53 with Debian's kernel, under real systemd.
 * Everything is asserted from the guest's one report line (test/boot/support/guest.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { binaryMissing, DIST, REPO } from "../support/fieldrelay.ts";
import { missing } from "../support/tools.ts";
import { debianBase } from "./support/base.ts";
import { exec, timed } from "./support/exec.ts";
import { addBootTestFiles, GUEST_CONFIG } from "./support/guest.ts";
import { interimImage, interimInstall } from "./support/interim-image.ts";
import { bootKernel } from "./support/kernel.ts";
import { type BootResult, bootImage, qemuAppend, tail } from "./support/qemu.ts";
import { type BootReport, parseReport } from "./support/report.ts";
import { BOOT_TOOLS } from "./support/tools.ts";

const BOOT_START_BYTES = 8192 * 512;
const BOOT_TIMEOUT_MS = 4 * 60_000;

const skip =
  missing(...BOOT_TOOLS) ??
  binaryMissing("arm64") ??
  (process.getuid?.() === 0 ? undefined : "needs root (mmdebstrap, device nodes in the initramfs)");

describe.skipIf(skip !== undefined)("Baked image boot under qemu-system-aarch64", () => {
  const timings: Record<string, number> = {};
  let work = "";
  let cmdline = "";
  let boot: BootResult;
  let report: BootReport | undefined;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "fieldrelay-boot-"));
    const base = timed(timings, "base", () => debianBase());
    const kernel = timed(timings, "kernel", () => bootKernel());
    const image = join(work, "device.img");
    timed(timings, "image", () => {
      const rootfs = join(work, "rootfs");
      exec(["mkdir", rootfs]);
      exec(["tar", "-xf", base.tar, "-C", rootfs]);
      addBootTestFiles(rootfs);
      interimInstall(rootfs, {
        binary: join(DIST, "fieldrelay-linux-arm64"),
        unit: join(REPO, "deploy/fieldrelay.service"),
        config: GUEST_CONFIG,
      });
      interimImage({ out: image, rootfsDir: rootfs, rootSizeMiB: 768, dataSizeMiB: 128 });
      rmSync(rootfs, { recursive: true, force: true });
    });
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
      } ${timings.kernel}s, image ${timings.image}s, qemu ${timings.boot}s; READY at ${readySeconds(report)}s after boot`,
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
    expect(r["first.ActiveState"]).toBe("active");
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
    expect(Number(r["second.WatchdogTimestampMonotonic"])).toBeGreaterThan(
      Number(r["first.WatchdogTimestampMonotonic"]),
    );
    expect(r["second.NRestarts"]).toBe("0");
    expect(r["second.Result"]).toBe("success");
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

  it("stops cleanly on systemctl stop: exit 0 after SIGTERM, never SIGKILL", () => {
    const r = reported();
    expect(r["stop.ActiveState"]).toBe("inactive");
    expect(r["stop.Result"]).toBe("success");
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
