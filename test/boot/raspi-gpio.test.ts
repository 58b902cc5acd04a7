/**
 * GPIO through the Raspberry Pi's own driver: qemu-system-aarch64 -M raspi3b with Debian's arm64
 * kernel and its bcm2837-rpi-3-b.dtb gives the real pinctrl-bcm2835 chip (54 lines named by the
 * device tree), and the arm64 binary drives it through the kernel's GPIO character device.
 * Asserted from the guest's report line (test/boot/support/raspi.ts).
 *
 * FIELDRELAY_BOOT_RASPI_OFFSET=<n> makes the get-by-offset steps read line n instead of 17: a
 * test-only run that must fail (it proves the round trips see the line they drive).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { binaryMissing, DIST } from "../support/fieldrelay.ts";
import { missing } from "../support/tools.ts";
import { debianBase } from "./support/base.ts";
import { doctorFrom } from "./support/doctor.ts";
import { exec, timed, timedAsync } from "./support/exec.ts";
import { bootKernel, RASPI3B_DTB, raspi3bKernelSpec } from "./support/kernel.ts";
import { type BootResult, bootImage, tail } from "./support/qemu.ts";
import {
  addRaspiFiles,
  OTHER_LINE,
  parseLineNames,
  RASPI_CHECK,
  RASPI_DONE_KEY,
  ROUND_TRIP_LINE,
} from "./support/raspi.ts";
import { type BootReport, parseReport } from "./support/report.ts";
import { notRoot } from "./support/skip.ts";
import { BOOT_TOOLS } from "./support/tools.ts";

const IMAGE_BYTES = 1024 * 1024 * 1024; // QEMU's SD card: a power of two
const BOOT_TIMEOUT_MS = 5 * 60_000;
const OFFSET = Number(process.env.FIELDRELAY_BOOT_RASPI_OFFSET ?? ROUND_TRIP_LINE.offset);
const LOG = join(tmpdir(), "fieldrelay-boot-raspi3b-serial.log");

const skip = missing(...BOOT_TOOLS) ?? binaryMissing("arm64") ?? notRoot();

describe.skipIf(skip !== undefined)("raspi3b boot: GPIO through the Pi's pinctrl-bcm2835 driver", () => {
  const timings: Record<string, number> = {};
  let work = "";
  let boot: BootResult;
  let report: BootReport | undefined;
  let dtNames: string[] = [];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "fieldrelay-raspi-"));
    const base = timed(timings, "base", () => debianBase());
    const kernel = timed(timings, "kernel", () => bootKernel(raspi3bKernelSpec()));
    const dtb = kernel.dtbs[RASPI3B_DTB];
    if (!dtb) throw new Error(`kernel entry has no ${RASPI3B_DTB}`);
    // The names the kernel must report, straight from the device tree blob it boots with.
    const hex = execFileSync("fdtget", ["-t", "bx", dtb, "/soc/gpio@7e200000", "gpio-line-names"], {
      encoding: "utf8",
    });
    dtNames = parseLineNames(
      Buffer.from(
        hex
          .trim()
          .split(/\s+/)
          .map((b) => Number.parseInt(b, 16)),
      ),
    );
    const image = join(work, "sd.img");
    timed(timings, "image", () => {
      const rootfs = join(work, "rootfs");
      exec(["mkdir", rootfs]);
      exec(["tar", "-xf", base.tar, "-C", rootfs]);
      addRaspiFiles(rootfs, join(DIST, "fieldrelay-linux-arm64"), OFFSET);
      exec(["truncate", "-s", String(IMAGE_BYTES), image]);
      exec(["mkfs.ext4", "-q", "-F", "-L", "raspi-root", "-d", rootfs, image]);
      rmSync(rootfs, { recursive: true, force: true });
    });
    boot = await timedAsync(timings, "boot", () =>
      bootImage({
        machine: "raspi3b",
        image,
        vmlinuz: kernel.vmlinuz,
        initrd: kernel.initrd,
        dtb,
        append: `console=ttyAMA0 root=/dev/mmcblk0 rootwait fieldrelay.init=${RASPI_CHECK} loglevel=4`,
        timeoutMs: BOOT_TIMEOUT_MS,
        logFile: LOG,
        stopWhen: /FIELDRELAY-BOOT-REPORT /,
      }),
    );
    report = parseReport(boot.log, RASPI_DONE_KEY);
    console.log(
      `raspi3b boot: ${kernel.release} (${kernel.hit ? "cached" : "built"} ${timings.kernel}s), image ${timings.image}s, qemu ${timings.boot}s`,
    );
  }, 15 * 60_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  function reported(): BootReport {
    if (!report) {
      throw new Error(
        `no complete FIELDRELAY-BOOT-REPORT line (${boot.timedOut ? `killed after ${BOOT_TIMEOUT_MS / 1000}s` : `qemu exit ${boot.exitCode}`}); full log in ${LOG}; serial tail:\n${tail(boot.log)}`,
      );
    }
    return report;
  }
  const lines = (v: string | undefined) => (v ?? "").split("|").filter(Boolean);
  const sensorValue = (v: string | undefined) => {
    const json = JSON.parse(lines(v)[0] ?? "null") as { samples: Array<{ values: { value: number } }> };
    return json.samples[0]?.values.value;
  };

  it("finds the SoC's GPIO chip under the pinctrl-bcm2835 driver, 54 lines", () => {
    const r = reported();
    expect(r["info.exit"], r.info).toBe("0");
    expect(r["chip0.label"]).toContain("brcm,bcm2835-gpio");
    expect(lines(r.info)[0]).toMatch(/^gpiochip0 \[pinctrl-bcm2835\] \(54 lines\)$/);
  });

  it("reports every line's name from the board's device tree", () => {
    const r = reported();
    expect(dtNames).toHaveLength(54);
    const listed = lines(r.info)
      .slice(1)
      .map((l) => /^\s*line\s+(\d+): "([^"]*)"/.exec(l))
      .map((m) => [Number(m?.[1]), m?.[2]]);
    expect(listed).toEqual(dtNames.map((n, i) => [i, n === "" ? "unnamed" : n]));
  });

  it("gpio set by name then get by offset round-trips 1, 0, 1 on the same line", () => {
    const r = reported();
    for (const [step, v] of [
      [1, "1"],
      [2, "0"],
      [3, "1"],
    ] as const) {
      expect(r[`rt${step}.set_by_name.exit`]).toBe("0");
      expect(lines(r[`rt${step}.get_by_offset`]), `round trip ${step}`).toEqual([v]);
    }
    expect(r["set_by_offset.exit"]).toBe("0");
    expect(lines(r.get_by_name)).toEqual(["0"]);
  });

  it("a gpio_input sensor on a named line reads what the line was driven to", () => {
    const r = reported();
    expect([1, 2, 3].map((s) => sensorValue(r[`rt${s}.sensor`]))).toEqual([1, 0, 1]);
    // GPIO27 driven high, GPIO17 left low: each sensor reads its own line.
    expect(sensorValue(r["other.sensor"]), OTHER_LINE.name).toBe(1);
    expect(sensorValue(r["button.sensor"]), ROUND_TRIP_LINE.name).toBe(0);
  });

  it("a missing line is one clear line and exit 69, by name, by offset and in a sensor", () => {
    const r = reported();
    for (const k of ["missing.get", "missing.offset", "missing.sensor"]) {
      expect(r[`${k}.exit`], r[k]).toBe("69");
      const out = lines(r[k]);
      expect(out, k).toHaveLength(1);
      expect(out[0]).toMatch(/^fieldrelay: /);
      expect(out[0]).not.toMatch(/\n\s+at /);
    }
    expect(r["missing.get"]).toContain("NO_SUCH_LINE");
    expect(r["missing.offset"]).toContain("99");
    expect(r["missing.sensor"]).toContain("ghost");
  });

  it("fieldrelay doctor resolves the sensors' named lines on the real chip and flags the missing one", () => {
    const r = reported();
    const doctor = doctorFrom(r);
    const check = (id: string) => doctor.checks.find((c) => c.id === id);
    expect(check("gpio.button")?.status, JSON.stringify(check("gpio.button"))).toBe("ok");
    expect(check("gpio.button")?.message).toBe(
      `sensor button: line ${ROUND_TRIP_LINE.name} is gpiochip0 offset ${ROUND_TRIP_LINE.offset}`,
    );
    expect(check("gpio.door")?.message).toBe(
      `sensor door: line ${OTHER_LINE.name} is gpiochip0 offset ${OTHER_LINE.offset}`,
    );
    expect(check("gpio.ghost")?.status).toBe("fail");
    expect(check("gpio.ghost")?.message).toContain('no GPIO line named "NO_SUCH_LINE"');
    // No udev rules and no fieldrelay user in this bare root: the service user could not open the chip.
    expect(check("gpio.access.gpiochip0")?.status).toBe("fail");
    expect(check("gpio.access.gpiochip0")?.message).toMatch(/user fieldrelay .* cannot open it/);
    expect(r["doctor.exit"]).toBe("2");
    expect(r["doctor.stderr"]).toBe("");
  });
});
