/**
 * `fieldrelay doctor`'s I2C verdicts on the paths reachable without I2C hardware: the same bus
 * node — a file where /dev/i2c-1 should be an i2c-dev character device — judged by the x64 binary
 * (the kernel answers I2C_FUNCS with ENOTTY: not an adapter) and by the ARM64 binary under
 * qemu-user (the emulator answers I2C ioctls with ENOSYS before any kernel sees them). Neither may
 * say "nothing answers": that verdict is for ENXIO/EREMOTEIO only (unit test doctor-i2c-verdict).
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { CheckResult } from "../../src/doctor/index.ts";
import { binaryMissing, type Flavor, run, Workspace } from "../support/fieldrelay.ts";
import { freePort } from "../support/ports.ts";
import { AARCH64_LIBC, missing, QEMU_AARCH64 } from "../support/tools.ts";

const skipArm = binaryMissing("arm64") ?? missing(QEMU_AARCH64, AARCH64_LIBC);

describe("fieldrelay doctor: an I2C bus node that no I2C driver answers", () => {
  const ws = new Workspace("fr-doctor-i2c-");
  afterAll(() => ws.cleanup());

  async function doctorI2c(flavor: Flavor): Promise<CheckResult[]> {
    const root = join(ws.dir, "root");
    mkdirSync(join(root, "dev"), { recursive: true });
    mkdirSync(join(root, "etc"), { recursive: true });
    writeFileSync(join(root, "dev/i2c-1"), "");
    chmodSync(join(root, "dev/i2c-1"), 0o666);
    writeFileSync(join(root, "etc/passwd"), "fieldrelay:x:995:995::/var/lib/fieldrelay:/usr/sbin/nologin\n");
    writeFileSync(join(root, "etc/group"), "fieldrelay:x:995:\ni2c:x:998:fieldrelay\n");
    const config = ws.writeConfig(
      {
        device: { id: "pi-i2c" },
        mqtt: { url: `mqtt://127.0.0.1:${await freePort()}` },
        queue: { path: ws.queuePath },
        ingest: { listen: "" },
        health: { listen: "" },
        rtc: { mode: "none" },
        system: { root },
        sensor: [{ name: "air", driver: "bme280", address: 0x76 }],
      },
      `doctor-${flavor}.toml`,
    );
    const r = await run(flavor, ["doctor", "-c", config, "--json"], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(2);
    const checks = (JSON.parse(r.stdout) as { checks: CheckResult[] }).checks.filter((c) =>
      c.id.startsWith("i2c"),
    );
    for (const c of checks) expect(c.message).not.toContain("nothing answers");
    return checks;
  }

  it.skipIf(binaryMissing("x64"))("x64: not an I2C adapter (ENOTTY), fixed by loading i2c-dev", async () => {
    const checks = await doctorI2c("x64");
    expect(checks).toEqual([
      {
        id: "i2c.bus1",
        status: "fail",
        message: `${join(ws.dir, "root")}/dev/i2c-1 is not an I2C adapter: ioctl(I2C_FUNCS) failed with ENOTTY`,
        fix: expect.stringMatching(/^load i2c-dev/),
      },
    ]);
  });

  it.skipIf(skipArm)(
    "arm64 under qemu-user: the emulator (ENOSYS), fixed by running natively",
    async () => {
      const checks = await doctorI2c("arm64");
      expect(checks).toHaveLength(1);
      expect(checks[0]).toMatchObject({ id: "i2c.bus1", status: "fail" });
      expect(checks[0]!.message).toMatch(/ioctl\(I2C_FUNCS\) is not implemented \(ENOSYS\).*qemu-user/);
      expect(checks[0]!.fix).toMatch(/^run doctor natively on the device, not under qemu-user/);
    },
    180_000,
  );

  it.skipIf(skipArm)(
    "`fieldrelay i2c scan` under qemu-user says it is the emulator (ENOSYS) in doctor's words, exit 69",
    async () => {
      const root = join(ws.dir, "scan-root");
      mkdirSync(join(root, "dev"), { recursive: true });
      writeFileSync(join(root, "dev/i2c-1"), "");
      const r = await run("arm64", ["i2c", "scan", "--root", root], { timeoutMs: 120_000 });
      expect(r.code).toBe(69);
      const lines = r.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /dev\/i2c-1: ioctl\(I2C_FUNCS\) is not implemented \(ENOSYS\).*qemu-user.* — run natively on the device, not under qemu-user/,
      );
    },
    180_000,
  );
});
