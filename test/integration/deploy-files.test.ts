/**
 * The files fieldrelay puts on a device, checked by the tools that will read them where this
 * machine has them (systemd-analyze, dtc, findmnt, the systemd daemons' own key tables) and by
 * strict parsers where it does not (udev rules, chrony directives).
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileOverlay, decompileOverlay, OverlayError } from "../../build/overlay.ts";
import {
  type FstabEntry,
  iniValue,
  iniValues,
  parseDirectives,
  parseFstab,
  parseIni,
  parseUdevRules,
  renderFstab,
  udevGet,
} from "../support/device-files.ts";
import { missing, type Tool } from "../support/tools.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const UNIT_PATH = join(ROOT, "deploy/systemd/fieldrelay.service");
const FSTAB_PATH = join(ROOT, "deploy/device/fstab.ro-root");
const JOURNALD_PATH = join(ROOT, "deploy/device/journald/fieldrelay.conf");
const TIMESYNCD_PATH = join(ROOT, "deploy/device/timesyncd/fieldrelay.conf");
const CHRONY_PATH = join(ROOT, "deploy/device/chrony/fieldrelay.conf");
const UDEV_PATH = join(ROOT, "deploy/device/udev/60-fieldrelay.rules");
const CONFIG_TXT_PATH = join(ROOT, "overlays/config.txt");
const DTS_PATH = join(ROOT, "overlays/fieldrelay-gpio.dts");

/** The exposure `systemd-analyze security --offline=yes` gives the unit (README quotes it). */
const EXPOSURE_LIMIT = 2.0;

const SYSTEMD_ANALYZE: Tool = { cmd: "systemd-analyze", pkg: "systemd" };
const DTC: Tool = { cmd: "dtc", pkg: "device-tree-compiler" };
const FINDMNT: Tool = { cmd: "findmnt", pkg: "util-linux" };
const JOURNALD: Tool = { cmd: "/lib/systemd/systemd-journald", pkg: "systemd" };
const TIMESYNCD: Tool = { cmd: "/lib/systemd/systemd-timesyncd", pkg: "systemd-timesyncd" };

const read = (path: string) => readFileSync(path, "utf8");
const unit = parseIni(read(UNIT_PATH));
const SINK_UNIT_PATH = join(ROOT, "deploy/systemd/fieldrelay-sink.service");

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "fieldrelay-deploy-files-"));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function run(cmd: string, args: string[]) {
  const proc = spawnSync(cmd, args, { encoding: "utf8" });
  if (proc.error) throw proc.error;
  return { status: proc.status, stdout: proc.stdout, stderr: proc.stderr };
}

describe("systemd unit deploy/systemd/fieldrelay.service", () => {
  it("sets the service type, watchdog, restart and stop directives the device relies on", () => {
    expect(iniValue(unit, "Service", "Type")).toBe("notify");
    expect(iniValue(unit, "Service", "NotifyAccess")).toBe("main");
    expect(iniValue(unit, "Service", "WatchdogSec")).toBe("30");
    expect(iniValue(unit, "Service", "Restart")).toBe("always");
    expect(iniValue(unit, "Service", "RestartSec")).toBe("5");
    expect(iniValue(unit, "Service", "TimeoutStopSec")).toBe("30");
    expect(iniValue(unit, "Service", "EnvironmentFile")).toBe("-/etc/fieldrelay/env");
    expect(iniValue(unit, "Service", "ExecStart")).toMatch(/^\/usr\/local\/bin\/fieldrelay run /);
    expect(iniValue(unit, "Install", "WantedBy")).toBe("multi-user.target");
  });

  it("keeps the start limit in [Unit], where a crash loop can never trip it", () => {
    expect(iniValues(unit, "Service", "StartLimitIntervalSec")).toEqual([]);
    expect(iniValues(unit, "Service", "StartLimitBurst")).toEqual([]);
    const interval_s = Number(iniValue(unit, "Unit", "StartLimitIntervalSec"));
    const burst = Number(iniValue(unit, "Unit", "StartLimitBurst"));
    const restart_s = Number(iniValue(unit, "Service", "RestartSec"));
    // The most automatic starts that fit in one interval, counting the one at its start.
    expect(burst).toBeGreaterThan(Math.floor(interval_s / restart_s) + 1);
  });

  it("orders after network.target only and never waits for network-online or time sync", () => {
    expect(iniValues(unit, "Unit", "After")).toEqual(["network.target"]);
    expect(iniValues(unit, "Unit", "Wants")).toEqual(["network.target"]);
    expect(read(UNIT_PATH)).not.toMatch(/^[^#]*(network-online|time-sync)/m);
    expect(iniValue(unit, "Unit", "RequiresMountsFor")).toBe("/var/lib/fieldrelay");
  });

  it("runs as fieldrelay with groups i2c and gpio, sandboxed to the data dir and its devices", () => {
    expect(iniValue(unit, "Service", "User")).toBe("fieldrelay");
    expect(iniValue(unit, "Service", "Group")).toBe("fieldrelay");
    expect(iniValue(unit, "Service", "SupplementaryGroups").split(/\s+/)).toEqual(["i2c", "gpio"]);
    expect(iniValue(unit, "Service", "ProtectSystem")).toBe("strict");
    expect(iniValue(unit, "Service", "ReadWritePaths")).toBe("/var/lib/fieldrelay");
    expect(iniValue(unit, "Service", "ProtectHome")).toBe("yes");
    expect(iniValue(unit, "Service", "PrivateTmp")).toBe("yes");
    expect(iniValue(unit, "Service", "NoNewPrivileges")).toBe("yes");
    expect(iniValue(unit, "Service", "DevicePolicy")).toBe("closed");
    expect(iniValues(unit, "Service", "DeviceAllow")).toEqual([
      "char-i2c rw",
      "char-gpiochip rw",
      "char-rtc r",
    ]);
    expect(iniValue(unit, "Service", "CapabilityBoundingSet")).toBe("");
    expect(iniValue(unit, "Service", "RestrictAddressFamilies").split(/\s+/)).toEqual([
      "AF_UNIX",
      "AF_INET",
      "AF_INET6",
    ]);
  });

  it("leaves writable+executable memory allowed for Bun's JIT", () => {
    expect(iniValues(unit, "Service", "MemoryDenyWriteExecute")).not.toContain("yes");
    expect(iniValues(unit, "Service", "MemoryDenyWriteExecute")).not.toContain("true");
  });

  it("lets the clock model read adjtimex, which @system-service alone would refuse", () => {
    const allowed = iniValues(unit, "Service", "SystemCallFilter")
      .filter((v) => !v.startsWith("~"))
      .flatMap((v) => v.split(/\s+/));
    expect(allowed).toEqual(expect.arrayContaining(["@system-service", "adjtimex", "clock_adjtime"]));
    expect(iniValues(unit, "Service", "ProtectClock")).toEqual(["no"]);
  });

  describe.skipIf(missing(SYSTEMD_ANALYZE))("with systemd-analyze", () => {
    it("leaves adjtimex allowed after every SystemCallFilter line is applied in order", () => {
      // systemd's rule: the first line sets allow-list mode; later lines add (plain) or remove (~).
      const expand = (name: string, seen = new Set<string>()): string[] => {
        if (!name.startsWith("@")) return [name];
        if (seen.has(name)) return [];
        seen.add(name);
        const out = spawnSync("systemd-analyze", ["syscall-filter", name], { encoding: "utf8" }).stdout;
        return out
          .split("\n")
          .slice(1)
          .map((l) => l.trim())
          .filter((l) => l && !l.startsWith("#"))
          .flatMap((l) => expand(l, seen));
      };
      const allowed = new Set<string>();
      for (const line of iniValues(unit, "Service", "SystemCallFilter")) {
        const deny = line.startsWith("~");
        for (const item of line.replace(/^~/, "").split(/\s+/).filter(Boolean))
          for (const call of expand(item)) {
            if (deny) allowed.delete(call);
            else allowed.add(call);
          }
      }
      expect(allowed.has("adjtimex")).toBe(true);
      expect(allowed.has("clock_adjtime")).toBe(true);
      expect(allowed.has("settimeofday")).toBe(false);
      expect(allowed.has("reboot")).toBe(false);
    });

    it("passes systemd-analyze verify without a word about the unit", () => {
      // verify insists the ExecStart binary exists: point a copy at a stand-in executable.
      const dir = join(work, "verify");
      mkdirSync(dir, { recursive: true });
      const binary = join(dir, "fieldrelay");
      writeFileSync(binary, "#!/bin/sh\n");
      chmodSync(binary, 0o755);
      const copy = join(dir, "fieldrelay.service");
      writeFileSync(
        copy,
        read(UNIT_PATH).replace("ExecStart=/usr/local/bin/fieldrelay ", `ExecStart=${binary} `),
      );
      const result = run("systemd-analyze", ["verify", "--man=no", copy]);
      expect(result.stderr.split("\n").filter((l) => l.includes("fieldrelay"))).toEqual([]);
      expect(result.status).toBe(0);
    });

    it(`has an exposure of at most ${EXPOSURE_LIMIT} (systemd-analyze security --offline=yes), as the README says`, () => {
      const result = run("systemd-analyze", [
        "security",
        "--offline=yes",
        `--threshold=${Math.round(EXPOSURE_LIMIT * 10)}`,
        UNIT_PATH,
      ]);
      const score = /Overall exposure level for fieldrelay\.service: (\d+\.\d)/.exec(result.stdout)?.[1];
      expect(score).toBeDefined();
      expect(Number(score)).toBeLessThanOrEqual(EXPOSURE_LIMIT);
      expect(result.status).toBe(0);
      expect(read(join(ROOT, "README.md"))).toContain(`exposure ${EXPOSURE_LIMIT.toFixed(1)}`);
    });
  });
});

describe("systemd unit deploy/systemd/fieldrelay-sink.service", () => {
  const sinkUnit = parseIni(read(SINK_UNIT_PATH));

  it("runs `fieldrelay sink` with its secrets from an env file, restarting, sandboxed without an account", () => {
    expect(iniValue(sinkUnit, "Service", "ExecStart")).toMatch(
      /^\/usr\/local\/bin\/fieldrelay sink --config \/etc\/fieldrelay\/sink\.toml /,
    );
    expect(iniValue(sinkUnit, "Service", "EnvironmentFile")).toBe("/etc/fieldrelay/sink.env");
    expect(iniValue(sinkUnit, "Service", "Restart")).toBe("always");
    expect(iniValue(sinkUnit, "Service", "DynamicUser")).toBe("yes");
    expect(iniValue(sinkUnit, "Service", "ProtectSystem")).toBe("strict");
    expect(iniValue(sinkUnit, "Service", "CapabilityBoundingSet")).toBe("");
    expect(iniValues(sinkUnit, "Service", "MemoryDenyWriteExecute")).toEqual(["no"]);
    expect(iniValues(sinkUnit, "Unit", "After")[0]).toMatch(/^network-online\.target/);
  });

  describe.skipIf(missing(SYSTEMD_ANALYZE))("with systemd-analyze", () => {
    it("passes systemd-analyze verify and scores at most 2.0 on exposure", () => {
      const dir = join(work, "verify-sink");
      mkdirSync(dir, { recursive: true });
      const binary = join(dir, "fieldrelay");
      writeFileSync(binary, "#!/bin/sh\n");
      chmodSync(binary, 0o755);
      const copy = join(dir, "fieldrelay-sink.service");
      writeFileSync(
        copy,
        read(SINK_UNIT_PATH).replace("ExecStart=/usr/local/bin/fieldrelay ", `ExecStart=${binary} `),
      );
      const verify = run("systemd-analyze", ["verify", "--man=no", copy]);
      expect(verify.stderr.split("\n").filter((l) => l.includes("fieldrelay"))).toEqual([]);
      expect(verify.status).toBe(0);
      const security = run("systemd-analyze", [
        "security",
        "--offline=yes",
        "--threshold=20",
        SINK_UNIT_PATH,
      ]);
      const score = /Overall exposure level for fieldrelay-sink\.service: (\d+\.\d)/.exec(
        security.stdout,
      )?.[1];
      expect(Number(score)).toBeLessThanOrEqual(2.0);
      expect(security.status).toBe(0);
    });
  });
});

describe("fstab template deploy/device/fstab.ro-root", () => {
  const devices = {
    boot: "PARTUUID=1234abcd-01",
    root: "PARTUUID=1234abcd-02",
    data: "LABEL=fieldrelay-data",
  };
  const rendered = renderFstab(read(FSTAB_PATH), devices);
  const entries = parseFstab(rendered);
  const at = (file: string): FstabEntry => {
    const found = entries.filter((e) => e.file === file);
    expect(found, `exactly one entry for ${file}`).toHaveLength(1);
    return found[0]!;
  };

  it("has the three placeholders and no other @…@ left after substitution", () => {
    for (const placeholder of ["@BOOT_DEV@", "@ROOT_DEV@", "@DATA_DEV@"])
      expect(read(FSTAB_PATH)).toContain(placeholder);
    expect(rendered).not.toMatch(/@[A-Z_]+@/);
  });

  it("gives every entry six fields and a unique absolute mount point", () => {
    expect(entries.length).toBeGreaterThan(10);
    for (const e of entries) expect(e.file === "/proc" || e.file.startsWith("/")).toBe(true);
    expect(new Set(entries.map((e) => e.file)).size).toBe(entries.length);
  });

  it("mounts root read-only ext4 checked first, and the boot partition vfat", () => {
    expect(at("/")).toMatchObject({ spec: devices.root, vfstype: "ext4", passno: 1 });
    expect(at("/").options).toContain("ro");
    expect(at("/boot/firmware")).toMatchObject({ spec: devices.boot, vfstype: "vfat", passno: 2 });
    expect(at("/boot/firmware").options).toContain("ro");
  });

  it("mounts the data partition by label at /var/lib/fieldrelay with data=journal,noatime and fsck pass 2", () => {
    const data = at("/var/lib/fieldrelay");
    expect(data).toMatchObject({ spec: "LABEL=fieldrelay-data", vfstype: "ext4", passno: 2 });
    expect(data.options).toEqual(expect.arrayContaining(["data=journal", "noatime"]));
    expect(data.options).not.toContain("ro");
  });

  it("puts scratch, logs and the state a read-only Debian writes on tmpfs", () => {
    for (const dir of [
      "/tmp",
      "/var/tmp",
      "/var/log",
      "/var/spool",
      "/var/lib/systemd/timesync",
      "/var/lib/dhcp",
      "/var/lib/dhcpcd",
      "/var/lib/NetworkManager",
      "/var/lib/logrotate",
      "/var/lib/chrony",
    ]) {
      expect(at(dir).vfstype, dir).toBe("tmpfs");
      expect(
        at(dir).options.find((o) => o.startsWith("size=")),
        `${dir} has a size cap`,
      ).toBeDefined();
      expect(at(dir).passno).toBe(0);
    }
    for (const dir of ["/tmp", "/var/tmp"]) expect(at(dir).options).toContain("mode=1777");
  });

  it.skipIf(missing(FINDMNT))("parses without errors under findmnt --verify", () => {
    const file = join(work, "fstab");
    writeFileSync(file, rendered);
    // Unreachable sources and targets are this host's business; parse errors are the template's.
    const result = run("findmnt", ["--verify", "--tab-file", file]);
    expect(`${result.stdout}${result.stderr}`).toMatch(/\b0 parse errors\b/);
  });
});

describe("journald drop-in deploy/device/journald/fieldrelay.conf", () => {
  const conf = parseIni(read(JOURNALD_PATH));

  it("keeps the journal in RAM with a size cap that fits /run", () => {
    expect([...conf.keys()]).toEqual(["Journal"]);
    expect(iniValue(conf, "Journal", "Storage")).toBe("volatile");
    const runtimeMax = /^(\d+)M$/.exec(iniValue(conf, "Journal", "RuntimeMaxUse"));
    expect(runtimeMax).not.toBeNull();
    expect(Number(runtimeMax![1])).toBeLessThanOrEqual(48);
    expect(iniValue(conf, "Journal", "RuntimeMaxFileSize")).toMatch(/^\d+M$/);
    expect(iniValue(conf, "Journal", "SystemMaxUse")).toMatch(/^\d+M$/);
    expect(iniValue(conf, "Journal", "ForwardToSyslog")).toBe("no");
  });

  it.skipIf(missing(JOURNALD))("uses only keys systemd-journald knows", () => {
    const table = readFileSync(JOURNALD.cmd).toString("latin1");
    for (const [key] of conf.get("Journal") ?? []) expect(table, key).toContain(`Journal.${key}\0`);
  });

  it.skipIf(missing(SYSTEMD_ANALYZE))("has time spans systemd parses", () => {
    const span = iniValue(conf, "Journal", "RateLimitIntervalSec");
    expect(run("systemd-analyze", ["timespan", span]).status).toBe(0);
  });
});

describe("timesyncd drop-in deploy/device/timesyncd/fieldrelay.conf", () => {
  const conf = parseIni(read(TIMESYNCD_PATH));

  it("sets retry and poll intervals in [Time] and says what happens on a large offset", () => {
    expect([...conf.keys()]).toEqual(["Time"]);
    expect(iniValues(conf, "Time", "ConnectionRetrySec")).toHaveLength(1);
    expect(read(TIMESYNCD_PATH)).toMatch(/stepped/);
  });

  it.skipIf(missing(TIMESYNCD))("uses only keys systemd-timesyncd knows", () => {
    const table = readFileSync(TIMESYNCD.cmd).toString("latin1");
    for (const [key] of conf.get("Time") ?? []) expect(table, key).toContain(`Time.${key}\0`);
  });

  it.skipIf(missing(SYSTEMD_ANALYZE))("has time spans systemd parses", () => {
    for (const [key, value] of conf.get("Time") ?? []) {
      expect(key).toMatch(/Sec$/);
      expect(run("systemd-analyze", ["timespan", value]).status, `${key}=${value}`).toBe(0);
    }
  });
});

describe("chrony drop-in deploy/device/chrony/fieldrelay.conf", () => {
  // chronyd is not installed here (installing it removes systemd-timesyncd): check the grammar.
  const directives = parseDirectives(read(CHRONY_PATH));

  it("steps the clock when it is more than a second off during the first updates", () => {
    const makestep = directives.filter((d) => d.name === "makestep");
    expect(makestep).toHaveLength(1);
    const [threshold, limit] = makestep[0]!.args;
    expect(makestep[0]!.args).toHaveLength(2);
    expect(Number(threshold)).toBeGreaterThan(0);
    expect(Number(threshold)).toBeLessThanOrEqual(1);
    expect(Number.isInteger(Number(limit)) && Number(limit) > 0).toBe(true);
  });

  it("uses only directives chrony.conf(5) defines, with the right arity", () => {
    const arity: Record<string, number> = { makestep: 2, rtcsync: 0 };
    for (const d of directives) expect(d.args.length, `${d.name} at line ${d.line}`).toBe(arity[d.name]);
  });
});

describe("udev rules deploy/device/udev/60-fieldrelay.rules", () => {
  const rules = parseUdevRules(read(UDEV_PATH));
  const forSubsystem = (subsystem: string) => {
    const found = rules.filter((r) => udevGet(r, "SUBSYSTEM", "==") === subsystem);
    expect(found, subsystem).toHaveLength(1);
    return found[0]!;
  };

  it("gives i2c-dev to group i2c and gpiochips to group gpio, read-write", () => {
    expect(udevGet(forSubsystem("i2c-dev"), "GROUP", "=")).toBe("i2c");
    expect(udevGet(forSubsystem("i2c-dev"), "MODE", "=")).toBe("0660");
    expect(udevGet(forSubsystem("gpio"), "KERNEL", "==")).toBe("gpiochip[0-9]*");
    expect(udevGet(forSubsystem("gpio"), "GROUP", "=")).toBe("gpio");
    expect(udevGet(forSubsystem("gpio"), "MODE", "=")).toBe("0660");
  });

  it("lets the service's own group read the RTC but not set it", () => {
    expect(udevGet(forSubsystem("rtc"), "GROUP", "=")).toBe("fieldrelay");
    expect(udevGet(forSubsystem("rtc"), "MODE", "=")).toBe("0640");
  });

  it("names only groups the service runs with", () => {
    const serviceGroups = [
      iniValue(unit, "Service", "Group"),
      ...iniValue(unit, "Service", "SupplementaryGroups").split(/\s+/),
    ];
    for (const rule of rules) expect(serviceGroups).toContain(udevGet(rule, "GROUP", "="));
  });

  it("rejects what udevd would reject (the parser is strict)", () => {
    expect(() => parseUdevRules('SUBSYSTEM=="rtc" GROUP="x"')).toThrow(/missing comma/);
    expect(() => parseUdevRules('SUBSYSTEM=="rtc", GROPU="x"')).toThrow(/GROPU/);
    expect(() => parseUdevRules("SUBSYSTEM==rtc")).toThrow(/not KEY=="value"/);
  });
});

describe("overlays/config.txt fragment", () => {
  const text = read(CONFIG_TXT_PATH);
  const active = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));

  it("enables I2C, the DS3231 driver and the GPIO names overlay, and carries no section header", () => {
    expect(active).toEqual(
      expect.arrayContaining(["dtparam=i2c_arm=on", "dtoverlay=i2c-rtc,ds3231", "dtoverlay=fieldrelay-gpio"]),
    );
    for (const line of active) expect(line).toMatch(/^[a-z_0-9]+=\S+$/);
    expect(new Set(active).size).toBe(active.length);
  });

  it("offers 1-Wire on GPIO4 and tells a Pi 5 owner what was tested on 16 KiB pages and what was not", () => {
    expect(text).toContain("dtoverlay=w1-gpio,gpiopin=4");
    expect(text).toMatch(/16 KiB pages\s+# under emulation/);
    expect(text).toMatch(/Not yet verified:\s+# real Pi 5 silicon/);
    // The 16 KiB-page kernel stays the Pi 5's kernel: no kernel= line is active.
    expect(active.some((l) => l.startsWith("kernel="))).toBe(false);
  });

  it("loads only overlays that are stock or built from overlays/", () => {
    const ours = active.filter((l) => l.startsWith("dtoverlay=fieldrelay"));
    for (const line of ours) {
      const name = line.slice("dtoverlay=".length).split(",")[0]!;
      expect(readdirSync(join(ROOT, "overlays"))).toContain(`${name}.dts`);
    }
  });
});

describe("GPIO names overlay overlays/fieldrelay-gpio.dts", () => {
  // The stock names of the BCM2711 bank (bcm2711-rpi-4-b.dts), by line offset.
  // biome-ignore format: ten names a line reads like the bank
  const STOCK = [
    "ID_SDA", "ID_SCL", "SDA1", "SCL1", "GPIO_GCLK", "GPIO5", "GPIO6", "SPI_CE1_N", "SPI_CE0_N", "SPI_MISO",
    "SPI_MOSI", "SPI_SCLK", "GPIO12", "GPIO13", "TXD1", "RXD1", "GPIO16", "GPIO17", "GPIO18", "GPIO19",
    "GPIO20", "GPIO21", "GPIO22", "GPIO23", "GPIO24", "GPIO25", "GPIO26", "GPIO27", "RGMII_MDIO", "RGMIO_MDC",
    "CTS0", "RTS0", "TXD0", "RXD0", "SD1_CLK", "SD1_CMD", "SD1_DATA0", "SD1_DATA1", "SD1_DATA2", "SD1_DATA3",
    "PWM0_MISO", "PWM1_MOSI", "STATUS_LED_G_CLK", "SPIFLASH_CE_N", "SDA0", "SCL0", "RGMII_RXCLK", "RGMII_RXCTL",
    "RGMII_RXD0", "RGMII_RXD1", "RGMII_RXD2", "RGMII_RXD3", "RGMII_TXCLK", "RGMII_TXCTL", "RGMII_TXD0",
    "RGMII_TXD1", "RGMII_TXD2", "RGMII_TXD3",
  ];
  const OURS: Record<number, string> = { 17: "RAIN_GAUGE", 22: "DOOR", 27: "ANEMOMETER" };

  it("fails with the package to install when dtc is missing", () => {
    const attempt = () => compileOverlay(DTS_PATH, join(work, "x.dtbo"), { dtc: "/nonexistent/dtc" });
    expect(attempt).toThrow(OverlayError);
    expect(attempt).toThrow(/\/nonexistent\/dtc not found/);
    try {
      attempt();
    } catch (error) {
      expect((error as OverlayError).describe()).toContain("apt-get install device-tree-compiler");
    }
  });

  describe.skipIf(missing(DTC))("compiled with dtc -@", () => {
    let source: string;
    beforeAll(() => {
      const dtbo = compileOverlay(DTS_PATH, join(work, "fieldrelay-gpio.dtbo"));
      source = decompileOverlay(dtbo);
    });

    it("targets the SoC gpio node through a fixup the firmware resolves", () => {
      expect(source).toContain('compatible = "brcm,bcm2711";');
      expect(source).toMatch(/fragment@0 \{\s+target = <0xffffffff>;/);
      expect(source).toMatch(/__fixups__ \{\s+gpio = "\/fragment@0:target:0";/);
    });

    it("names every one of the 58 lines: ours at 17, 22 and 27, stock names elsewhere", () => {
      const list = /gpio-line-names = "([^"]*)";/.exec(source)?.[1];
      expect(list).toBeDefined();
      const names = list!.split("\\0");
      expect(names).toHaveLength(58);
      expect(names[17]).toBe("RAIN_GAUGE");
      expect(names).toEqual(STOCK.map((stock, line) => OURS[line] ?? stock));
    });

    it("refuses a broken source with the file in the message", () => {
      const broken = join(work, "broken.dts");
      writeFileSync(
        broken,
        "/dts-v1/;\n/plugin/;\n/ { fragment@0 { target = <&gpio>; __overlay__ { x = ; }; }; };\n",
      );
      expect(() => compileOverlay(broken, join(work, "broken.dtbo"))).toThrow(/dtc failed on .*broken\.dts/);
    });
  });
});

describe("deploy file coverage", () => {
  it("exercises every file in deploy/systemd, deploy/device and overlays", () => {
    const tested = new Set(
      [
        UNIT_PATH,
        SINK_UNIT_PATH,
        FSTAB_PATH,
        JOURNALD_PATH,
        TIMESYNCD_PATH,
        CHRONY_PATH,
        UDEV_PATH,
        CONFIG_TXT_PATH,
        DTS_PATH,
      ].map((p) => relative(ROOT, p)),
    );
    const present = ["deploy/systemd", "deploy/device", "overlays"].flatMap((dir) =>
      readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => relative(ROOT, join(e.parentPath, e.name))),
    );
    expect(present.filter((f) => !tested.has(f))).toEqual([]);
  });
});
