import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { monotonicNs } from "../../src/clock/index.ts";
import { silentLogger } from "../../src/log/index.ts";
import { openQueue } from "../../src/queue/index.ts";
import { run, Workspace } from "../support/fieldrelay.ts";

const ws = new Workspace("fr-rtc-cli-");
afterAll(() => ws.cleanup());

function rootWithKernelRtc(name: string, sinceEpoch: string, temperatureMilliC?: string): string {
  const root = join(ws.dir, name);
  const rtc0 = join(root, "sys/class/rtc/rtc0");
  mkdirSync(rtc0, { recursive: true });
  writeFileSync(join(rtc0, "name"), "rtc-ds1307 1-0068\n");
  writeFileSync(join(rtc0, "since_epoch"), `${sinceEpoch}\n`);
  if (temperatureMilliC) {
    mkdirSync(join(rtc0, "device/hwmon/hwmon0"), { recursive: true });
    writeFileSync(join(rtc0, "device/hwmon/hwmon0/temp1_input"), `${temperatureMilliC}\n`);
  }
  return root;
}

const config = (root: string, file: string) =>
  ws.writeConfig(
    { device: { id: "pi-1" }, system: { root }, clock: { sync_source: `file:${join(ws.dir, "synced")}` } },
    file,
  );

describe("fieldrelay rtc", () => {
  const now = Math.floor(Date.now() / 1000);
  const kernel = config(rootWithKernelRtc("kernel", String(now - 3), "24750"), "kernel.toml");
  const empty = join(ws.dir, "empty");
  mkdirSync(empty);
  const none = config(empty, "none.toml");

  it("status reports the kernel path, OSF, drift and temperature", async () => {
    const r = await run("source", ["rtc", "status", "--json", "--config", kernel]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ path: "kernel", valid: true, osf: false, temperatureC: 24.75 });
    expect(s.reason).toMatch(/rtc-ds1307/);
    expect(s.driftMs).toBeLessThan(-2000);
    expect(s.driftMs).toBeGreaterThan(-20_000);
    const text = await run("source", ["rtc", "status", "--config", kernel]);
    expect(text.stdout).toMatch(/OSF:\s+clear/);
    expect(text.stdout).toMatch(/temperature:\s+24.75 °C/);
  });

  it("read prints the RTC time in UTC", async () => {
    const r = await run("source", ["rtc", "read", "--config", kernel]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(new Date((now - 3) * 1000).toISOString());
  });

  it("exits 69 with the reason when no RTC is found", async () => {
    for (const cmd of ["read", "status"]) {
      const r = await run("source", ["rtc", cmd, "--config", none]);
      expect(r.code).toBe(69);
      expect(r.stderr).toMatch(
        /^fieldrelay: no RTC found: I2C bus 1 cannot be opened: .*dev\/i2c-1: no such adapter \(ENOENT\)/,
      );
    }
  });

  it("set --from-system on the kernel path goes through the RTC's device node (RTC_SET_TIME): one line when it cannot", async () => {
    // The fake tree has sysfs but no /dev/rtc0: the CLI names the node and what to check (69).
    const r = await run("source", ["rtc", "set", "--from-system", "--force", "--config", kernel]);
    expect(r.code).toBe(69);
    expect(r.stderr).not.toMatch(/hwclock/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^fieldrelay: cannot set the RTC: .*dev\/rtc0: open failed: .*\(ENOENT\)/);
    // A node that is not an RTC (a plain file here) is refused by the ioctl, said the same way.
    const root = rootWithKernelRtc("kernel-file-node", String(now), undefined);
    mkdirSync(join(root, "dev"), { recursive: true });
    writeFileSync(join(root, "dev/rtc0"), "");
    const fileNode = config(root, "kernel-file-node.toml");
    const f = await run("source", ["rtc", "set", "--from-system", "--force", "--config", fileNode]);
    expect(f.code).toBe(69);
    expect(f.stderr).toMatch(
      /^fieldrelay: cannot set the RTC: .*dev\/rtc0: RTC_SET_TIME failed: .*\(ENOTTY\)/,
    );
  });

  it("set without --from-system is a usage error (64); an unknown flag too", async () => {
    expect((await run("source", ["rtc", "set", "--config", kernel])).code).toBe(64);
    const r = await run("source", ["rtc", "read", "--frob"]);
    expect(r.code).toBe(64);
    expect(r.stderr.trim()).toBe("fieldrelay: unknown option '--frob'");
  });

  it("a kernel RTC whose time cannot be read is invalid: exit 65", async () => {
    const bad = config(rootWithKernelRtc("bad", "garbage"), "bad.toml");
    const r = await run("source", ["rtc", "status", "--config", bad]);
    expect(r.code).toBe(65);
    expect(r.stdout).toMatch(/INVALID/);
  });
});

describe("fieldrelay clock", () => {
  it("shows this boot's anchors with their bounds, the crystal's rate and the bound now", async () => {
    const root = join(ws.dir, "clock-root");
    mkdirSync(join(root, "proc/sys/kernel/random"), { recursive: true });
    const bootId = "c1c1c1c1-0000-4000-8000-000000000001";
    writeFileSync(join(root, "proc/sys/kernel/random/boot_id"), `${bootId}\n`);
    const dbPath = join(ws.dir, "clock-queue.db");
    const q = await openQueue({ path: dbPath, log: silentLogger(), commitIntervalMs: 0 });
    // NTP checked the RTC an hour ago, then the RTC was read at its second's edge every 10 min;
    // the crystal runs 40 ppm fast against it.
    const mono = monotonicNs();
    const t0 = Date.now() - 3_600_000;
    const start = mono - 3_600_000_000_000n;
    q.saveAnchor({ bootId, monoNs: start, wallMs: t0, source: "ntp", uncertaintyMs: 8 });
    for (let i = 0; i <= 6; i++)
      q.saveAnchor({
        bootId,
        monoNs: start + BigInt(Math.round(i * 600_000 * 1.00004 * 1e6)),
        wallMs: t0 + i * 600_000,
        source: "rtc",
        uncertaintyMs: 2,
      });
    q.saveAnchor({ bootId: "other-boot", monoNs: 1n, wallMs: 0, source: "ntp", uncertaintyMs: 1 });
    await q.close();
    const cfg = ws.writeConfig(
      {
        device: { id: "pi-1" },
        system: { root },
        queue: { path: dbPath },
        clock: { sync_source: `file:${join(ws.dir, "never-synced")}` },
      },
      "clock.toml",
    );
    const r = await run("source", ["clock", "--json", "--config", cfg]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ bootId, synced: false, stored: 8 });
    expect(report.anchors).toHaveLength(8);
    expect(report.crystal.ratePpm).toBeCloseTo(40, 1);
    expect(report.boundMs).toBeGreaterThan(8);
    expect(report.boundMs).toBeLessThan(100);
    expect(Math.abs(Date.parse(report.now) - Date.now())).toBeLessThan(5000);
    const text = await run("source", ["clock", "--config", cfg]);
    expect(text.stdout).toMatch(/crystal:\s+\+40\.\d\d ppm against the RTC/);
    expect(text.stdout).toMatch(/anchors:\s+8 kept of 8 stored/);
  });

  it("applies and shows the RTC trust record of an earlier boot to a boot that never synced", async () => {
    const root = join(ws.dir, "clock-trust-root");
    mkdirSync(join(root, "proc/sys/kernel/random"), { recursive: true });
    const bootId = "c1c1c1c1-0000-4000-8000-0000000000f2";
    writeFileSync(join(root, "proc/sys/kernel/random/boot_id"), `${bootId}\n`);
    const dir = join(ws.dir, "clock-trust-data");
    mkdirSync(dir);
    const dbPath = join(dir, "queue.db");
    const q = await openQueue({ path: dbPath, log: silentLogger(), commitIntervalMs: 0 });
    const mono = monotonicNs();
    const t0 = Date.now() - 600_000;
    for (let i = 0; i <= 1; i++)
      q.saveAnchor({
        bootId,
        monoNs: mono - 600_000_000_000n + BigInt(i * 600_000_000_000),
        wallMs: t0 + i * 600_000,
        source: "rtc",
        uncertaintyMs: 2,
        ppm: 2,
      });
    await q.close();
    const cfg = ws.writeConfig(
      {
        device: { id: "pi-1" },
        system: { root },
        queue: { path: dbPath },
        clock: { sync_source: `file:${join(ws.dir, "never-synced")}` },
      },
      "clock-trust.toml",
    );
    const before = JSON.parse((await run("source", ["clock", "--json", "--config", cfg])).stdout);
    expect(before.boundMs).toBeGreaterThan(1000);
    expect(before.trust).toBeUndefined();
    // An earlier boot's NTP check a day ago: offset 0 ± 5 ms, rate 2.0 ± 0.1 ppm.
    const trust = {
      v: 1,
      rtc: "DS3231 at 0x68 on I2C bus 1",
      bootId: "earlier",
      checkedMs: t0 - 86_400_000,
      offsetMs: 0,
      offsetErrMs: 5,
      ppm: 2,
      ppmErr: 0.1,
      ppmMs: t0 - 86_400_000,
    };
    writeFileSync(join(dir, "rtc-trust.json"), JSON.stringify(trust));
    const r = await run("source", ["clock", "--json", "--config", cfg]);
    expect(r.stderr).toBe("");
    const report = JSON.parse(r.stdout);
    expect(report.trust).toMatchObject({ applied: true, ppm: 2 });
    expect(report.boundMs).toBeLessThan(200);
    const text = await run("source", ["clock", "--config", cfg]);
    expect(text.stdout).toMatch(/rtc trust:\s+checked .*rate 2\.000 ± 0\.100 ppm; bounds this boot/);
  });

  it("says which file is missing when there is no queue database (66)", async () => {
    const root = join(ws.dir, "clock-root");
    const cfg = ws.writeConfig(
      { device: { id: "pi-1" }, system: { root }, queue: { path: join(ws.dir, "nope.db") } },
      "clock-missing.toml",
    );
    const r = await run("source", ["clock", "--config", cfg]);
    expect(r.code).toBe(66);
    expect(r.stderr).toMatch(/^fieldrelay: queue database .*nope\.db does not exist/);
  });
});
