import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assembleBundle } from "../../build/bundle.ts";
import { binaryMissing, DIST } from "../support/fieldrelay.ts";
import {
  accountEntry,
  exec,
  execInMountNamespace,
  prepareRoot,
  removeRoot,
  treeListing,
  USER_CONFIG_TXT,
  unshareRefused,
} from "../support/install-root.ts";
import { missing, UNSHARE, USERADD } from "../support/tools.ts";

const X64 = join(DIST, "fieldrelay-linux-x64");
const BEGIN = "# >>> fieldrelay >>>";
const END = "# <<< fieldrelay <<<";
// Words that mean install.sh wrote something; a run that changes nothing prints none of them.
const WROTE = /^(installed|created|added|updated|masked|unmasked|enabled|kept previous|removed|fixed)\b/;

const skip = binaryMissing("x64") ?? missing(USERADD);
const tmp = mkdtempSync(join(tmpdir(), "fr-install-e2e-"));
const bundle = join(tmp, "bundle");
const roots: string[] = [];

afterAll(() => {
  for (const r of roots) removeRoot(r);
  removeRoot(tmp);
});

function freshRoot(): string {
  const root = prepareRoot();
  roots.push(root);
  return root;
}

function install(root: string, ...args: string[]) {
  return exec(["bash", join(bundle, "install.sh"), "--root", root, ...args]);
}

/** A copy of the x64 binary cut short, as an interrupted scp leaves it: the header is intact. */
function truncatedBinary(): string {
  const file = join(tmp, "fieldrelay-truncated");
  if (!existsSync(file)) writeFileSync(file, readFileSync(X64).subarray(0, 20_000_000), { mode: 0o755 });
  return file;
}

function mode(path: string): string {
  return (statSync(path).mode & 0o7777).toString(8);
}

function owner(path: string): string {
  const st = lstatSync(path);
  return `${st.uid}:${st.gid}`;
}

function countLines(text: string, line: string): number {
  return text.split("\n").filter((l) => l.trim() === line).length;
}

describe.skipIf(skip)("install.sh --root into a prepared tree (x64 bundle, check-config really runs)", () => {
  beforeAll(() => {
    assembleBundle({ out: bundle, binary: X64 });
  });

  it("a fresh install creates every file with its mode and owner, the user, the groups and the enable link", async () => {
    const root = freshRoot();
    const r = await install(root);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);

    const user = accountEntry(root, "passwd", "fieldrelay");
    expect(user).toBeDefined();
    const [, , uid, gid, , home, shell] = user!;
    expect(Number(uid)).toBeLessThan(1000); // a system account
    expect([home, shell]).toEqual(["/nonexistent", "/usr/sbin/nologin"]);
    expect(accountEntry(root, "group", "fieldrelay")?.[2]).toBe(gid);
    expect(accountEntry(root, "shadow", "fieldrelay")).toBeDefined();
    for (const g of ["i2c", "gpio"]) {
      expect(accountEntry(root, "group", g)?.[3]?.split(",")).toContain("fieldrelay");
      expect(accountEntry(root, "gshadow", g)).toBeDefined();
    }
    expect(existsSync(join(root, "nonexistent"))).toBe(false);

    const bin = join(root, "usr/local/bin/fieldrelay");
    expect(readFileSync(bin).equals(readFileSync(X64))).toBe(true);
    expect([mode(bin), owner(bin)]).toEqual(["755", "0:0"]);
    expect(existsSync(join(root, "usr/local/bin/fieldrelay.prev"))).toBe(false);
    expect(existsSync(join(root, "usr/local/bin/.fieldrelay.new"))).toBe(false);

    const cfg = join(root, "etc/fieldrelay/config.toml");
    expect(readFileSync(cfg, "utf8")).toBe(readFileSync(join(bundle, "config.example.toml"), "utf8"));
    expect([mode(cfg), owner(cfg)]).toEqual(["640", `0:${gid}`]);
    const env = join(root, "etc/fieldrelay/env");
    expect([mode(env), owner(env), statSync(env).size]).toEqual(["600", "0:0", 0]);

    const unit = join(root, "etc/systemd/system/fieldrelay.service");
    expect(readFileSync(unit, "utf8")).toBe(readFileSync(join(bundle, "systemd/fieldrelay.service"), "utf8"));
    expect([mode(unit), owner(unit)]).toEqual(["644", "0:0"]);
    const wants = join(root, "etc/systemd/system/multi-user.target.wants/fieldrelay.service");
    expect(readlinkSync(wants)).toBe("/etc/systemd/system/fieldrelay.service");
    expect(readlinkSync(join(root, "etc/systemd/system/fake-hwclock.service"))).toBe("/dev/null");

    const state = join(root, "var/lib/fieldrelay");
    expect([mode(state), owner(state)]).toEqual(["750", `${uid}:${gid}`]);

    const configTxt = readFileSync(join(root, "boot/firmware/config.txt"), "utf8");
    expect(configTxt.startsWith(USER_CONFIG_TXT)).toBe(true);
    expect(configTxt).toContain("dtoverlay=i2c-rtc,ds3231");

    expect(r.stdout).toContain("checked /etc/fieldrelay/config.toml with the new binary");
    expect(r.stdout).toMatch(
      /^installed \/usr\/local\/bin\/fieldrelay \(fieldrelay \d+\.\d+\.\d+ .*target linux-x64/m,
    );
    // Paths are reported as the device sees them, without the --root prefix.
    expect(r.stdout.split("\n").filter((l) => !l.startsWith("done:") && l.includes(root))).toEqual([]);
  });

  it("a second run changes nothing (same tree, modes and owners) and says unchanged for each item", async () => {
    const root = freshRoot();
    expect((await install(root)).code).toBe(0);
    const before = treeListing(root);
    const again = await install(root);
    expect(again.code).toBe(0);
    expect(treeListing(root)).toEqual(before);
    const lines = again.stdout.trim().split("\n");
    expect(lines.filter((l) => WROTE.test(l))).toEqual([]);
    for (const item of [
      "group fieldrelay",
      "user fieldrelay",
      "fieldrelay in group i2c",
      "fieldrelay in group gpio",
      "/usr/local/bin/fieldrelay",
      "/etc/fieldrelay/config.toml",
      "/etc/fieldrelay/env",
      "/etc/systemd/system/fieldrelay.service",
      "/boot/firmware/config.txt",
      "/etc/systemd/system/fake-hwclock.service",
      "/var/lib/fieldrelay",
      "/etc/systemd/system/multi-user.target.wants/fieldrelay.service",
    ]) {
      expect(
        lines.some((l) => l.startsWith(`unchanged ${item}`)),
        `unchanged ${item}`,
      ).toBe(true);
    }
  });

  it("keeps an existing user config, puts the candidate beside it and prints a diff hint", async () => {
    const root = freshRoot();
    expect((await install(root)).code).toBe(0);
    const mine = '# mine\n[device]\nid = "pi-field-7"\n';
    writeFileSync(join(root, "etc/fieldrelay/config.toml"), mine);
    const r = await install(root);
    expect(r.code).toBe(0);
    expect(readFileSync(join(root, "etc/fieldrelay/config.toml"), "utf8")).toBe(mine);
    expect(readFileSync(join(root, "etc/fieldrelay/config.toml.new"), "utf8")).toBe(
      readFileSync(join(bundle, "config.example.toml"), "utf8"),
    );
    expect(r.stdout).toContain(
      "kept /etc/fieldrelay/config.toml (yours, not overwritten); compare: diff -u /etc/fieldrelay/config.toml /etc/fieldrelay/config.toml.new",
    );
    // check-config ran on the user's file, not on the example.
    expect(r.stdout).toContain("checked /etc/fieldrelay/config.toml with the new binary");
  });

  it("rolls back to the previous binary when the new one cannot run check-config, and exits non-zero", async () => {
    const root = freshRoot();
    expect((await install(root)).code).toBe(0);
    const r = await install(root, "--binary", truncatedBinary());
    expect(r.code).not.toBe(0);
    const bin = join(root, "usr/local/bin/fieldrelay");
    expect(readFileSync(bin).equals(readFileSync(X64))).toBe(true);
    expect(mode(bin)).toBe("755");
    expect(r.stdout).toContain("kept previous binary as /usr/local/bin/fieldrelay.prev");
    expect(r.stdout).toContain("rolled back /usr/local/bin/fieldrelay to the previous binary");
    expect(r.stderr.trim().split("\n").at(-1)).toMatch(
      /^install\.sh: the new binary failed to run check-config \(exit \d+\): it is broken or truncated; the previous binary is back$/,
    );
    // The good binary still runs from its installed place.
    const version = await exec([bin, "version"]);
    expect(version.code).toBe(0);
  });

  it("rejects a config check-config refuses (exit 78) with a one-line reason, after rolling back", async () => {
    const root = freshRoot();
    const bad = join(tmp, "bad.toml");
    writeFileSync(bad, '[device]\nid = "a#b"\n');
    const r = await install(root, "--config", bad);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("device.id");
    expect(r.stderr.trim().split("\n").at(-1)).toBe(
      "install.sh: check-config rejected /etc/fieldrelay/config.toml (exit 78); fix it and run install.sh again",
    );
    // A first install has no previous binary: the one that was just written is removed again.
    expect(existsSync(join(root, "usr/local/bin/fieldrelay"))).toBe(false);
  });

  it("writes the config.txt block once after two runs and never repeats a line the user already has", async () => {
    const root = freshRoot();
    expect((await install(root)).code).toBe(0);
    expect((await install(root)).code).toBe(0);
    const text = readFileSync(join(root, "boot/firmware/config.txt"), "utf8");
    expect(countLines(text, BEGIN)).toBe(1);
    expect(countLines(text, END)).toBe(1);
    expect(countLines(text, "dtparam=i2c_arm=on")).toBe(1);
    expect(countLines(text, "dtoverlay=i2c-rtc,ds3231")).toBe(1);
    // Every other setting of the fragment is inside the block.
    const block = text.slice(text.indexOf(BEGIN), text.indexOf(END));
    for (const line of readFileSync(join(bundle, "overlays/config.txt"), "utf8").split("\n")) {
      if (/^\s*[^#\s]/.test(line) && line.trim() !== "dtparam=i2c_arm=on") expect(block).toContain(line);
    }
    expect(block.split("\n")[1]).toBe("[all]");
  });

  it("replaces the block in place when the fragment changes, keeping the user's lines around it", async () => {
    const root = freshRoot();
    expect((await install(root)).code).toBe(0);
    const file = join(root, "boot/firmware/config.txt");
    writeFileSync(file, `${readFileSync(file, "utf8")}# after the block\ngpu_mem=16\n`);
    expect((await install(root, "--no-rtc")).code).toBe(0);
    const text = readFileSync(file, "utf8");
    expect(countLines(text, BEGIN)).toBe(1);
    expect(text).not.toContain("ds3231");
    expect(text.trimEnd().endsWith("gpu_mem=16")).toBe(true);
    expect(text.startsWith(USER_CONFIG_TXT)).toBe(true);
  });

  it("--no-rtc leaves the DS3231 overlay out and fake-hwclock unmasked", async () => {
    const root = freshRoot();
    const r = await install(root, "--no-rtc");
    expect(r.code).toBe(0);
    expect(readFileSync(join(root, "boot/firmware/config.txt"), "utf8")).not.toContain("ds3231");
    expect(existsSync(join(root, "etc/systemd/system/fake-hwclock.service"))).toBe(false);
    expect(r.stdout).toContain("unchanged fake-hwclock.service (not masked: --no-rtc)");
  });

  it("installs the device files and the overlay the bundle carries, chrony only when /etc/chrony exists", async () => {
    const out = join(tmp, "bundle-device");
    const repo = join(tmp, "repo");
    // A repository shaped like the one after issue 7, with placeholder device files and a .dtbo.
    for (const [rel, text] of Object.entries({
      "deploy/install.sh": readFileSync(join(bundle, "install.sh"), "utf8"),
      "deploy/config.example.toml": readFileSync(join(bundle, "config.example.toml"), "utf8"),
      "deploy/systemd/fieldrelay.service": readFileSync(join(bundle, "systemd/fieldrelay.service"), "utf8"),
      "deploy/device/journald/fieldrelay.conf": "[Journal]\nSystemMaxUse=50M\n",
      "deploy/device/timesyncd/fieldrelay.conf": "[Time]\nFallbackNTP=pool.ntp.org\n",
      "deploy/device/chrony/fieldrelay.conf": "makestep 1 -1\n",
      "deploy/device/udev/60-fieldrelay.rules": 'SUBSYSTEM=="i2c-dev", GROUP="i2c", MODE="0660"\n',
      "overlays/config.txt": readFileSync(join(bundle, "overlays/config.txt"), "utf8"),
    })) {
      const path = join(repo, rel);
      await exec(["mkdir", "-p", join(path, "..")]);
      writeFileSync(path, text);
    }
    writeFileSync(join(repo, "dtbo"), Buffer.from([0xd0, 0x0d, 0xfe, 0xed]));
    copyFileSync(X64, join(tmp, "bin-copy"));
    assembleBundle({
      out,
      binary: join(tmp, "bin-copy"),
      root: repo,
      dtbo: join(repo, "dtbo"),
      version: "fieldrelay test",
    });
    const root = freshRoot();
    const r = await exec(["bash", join(out, "install.sh"), "--root", root]);
    expect(r.code).toBe(0);
    for (const dest of [
      "etc/systemd/journald.conf.d/fieldrelay.conf",
      "etc/systemd/timesyncd.conf.d/fieldrelay.conf",
      "etc/udev/rules.d/60-fieldrelay.rules",
    ]) {
      expect([mode(join(root, dest)), owner(join(root, dest))]).toEqual(["644", "0:0"]);
    }
    expect(existsSync(join(root, "etc/chrony/conf.d/fieldrelay.conf"))).toBe(false);
    expect(readFileSync(join(root, "boot/firmware/overlays/fieldrelay-gpio.dtbo"), "latin1")).toBe(
      "\xd0\x0d\xfe\xed",
    );
    // The fragment does not name the overlay, so the block enables it.
    expect(readFileSync(join(root, "boot/firmware/config.txt"), "utf8")).toContain(
      "dtoverlay=fieldrelay-gpio\n",
    );
    expect(r.stdout).toContain("installed /usr/local/bin/fieldrelay (fieldrelay test)");

    await exec(["mkdir", "-p", join(root, "etc/chrony")]);
    const again = await exec(["bash", join(out, "install.sh"), "--root", root]);
    expect(again.code).toBe(0);
    expect(readFileSync(join(root, "etc/chrony/conf.d/fieldrelay.conf"), "utf8")).toBe("makestep 1 -1\n");
    expect(again.stdout).toContain("installed /etc/chrony/conf.d/fieldrelay.conf");
    expect(again.stdout).toContain("unchanged /etc/udev/rules.d/60-fieldrelay.rules");
  });
});

// A read-only root: a read-only bind mount of the tree inside a private mount namespace (unshare -m),
// so nothing outside this test sees the mounts.
const roSkip = skip ?? missing(UNSHARE) ?? (await unshareRefused());

describe.skipIf(roSkip)("install.sh on a read-only mount", () => {
  beforeAll(() => {
    if (!existsSync(join(bundle, "install.sh"))) assembleBundle({ out: bundle, binary: X64 });
  });

  /** Bind-mount the tree read-only, run install.sh, then report the mount's flags afterwards. */
  async function installReadOnly(root: string, ...args: string[]) {
    const script = [
      'root="$1" installer="$2"',
      "shift 2",
      'mount --bind "$root" "$root"',
      'mount -o remount,bind,ro "$root"',
      'touch "$root/probe" 2>/dev/null && echo "PROBE: writable before" || echo "PROBE: read-only before"',
      'bash "$installer" --root "$root" "$@"',
      "code=$?",
      'echo "AFTER: $(findmnt -n -o VFS-OPTIONS --mountpoint "$root")"',
      "exit $code",
    ].join("\n");
    return execInMountNamespace(script, ["bash", root, join(bundle, "install.sh"), ...args]);
  }

  it("remounts the tree's mount read-write for the install and read-only again afterwards", async () => {
    const root = freshRoot();
    const r = await installReadOnly(root);
    expect(r.stdout).toContain("PROBE: read-only before");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`remounted ${root} read-write`);
    expect(r.stdout).toContain(`remounted ${root} read-only`);
    expect(r.stdout).toMatch(/^AFTER: ro\b/m);
    expect(readFileSync(join(root, "usr/local/bin/fieldrelay")).equals(readFileSync(X64))).toBe(true);
  });

  it("remounts read-only again even when the install fails and rolls back", async () => {
    const root = freshRoot();
    expect((await install(root)).code).toBe(0);
    const truncated = join(tmp, "fieldrelay-truncated-ro");
    writeFileSync(truncated, readFileSync(X64).subarray(0, 20_000_000), { mode: 0o755 });
    const r = await installReadOnly(root, "--binary", truncated);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toContain("rolled back /usr/local/bin/fieldrelay to the previous binary");
    expect(r.stdout).toMatch(/^AFTER: ro\b/m);
    expect(readFileSync(join(root, "usr/local/bin/fieldrelay")).equals(readFileSync(X64))).toBe(true);
  });

  it("leaves a writable mount alone", async () => {
    const root = freshRoot();
    const r = await install(root);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("remounted");
  });
});

describe.skipIf(binaryMissing("arm64") ?? skip)(
  "install.sh with the build's ARM64 bundle (dist/bundle)",
  () => {
    it("installs the ARM64 binary; check-config runs only where the host can execute it", async () => {
      const root = freshRoot();
      const r = await exec(["bash", join(DIST, "bundle/install.sh"), "--root", root]);
      expect(r.code).toBe(0);
      expect(
        readFileSync(join(root, "usr/local/bin/fieldrelay")).equals(
          readFileSync(join(DIST, "fieldrelay-linux-arm64")),
        ),
      ).toBe(true);
      expect(r.stdout).toMatch(
        /^(skipped check-config: cannot run an aarch64 binary here \(x86_64\)|checked \/etc\/fieldrelay\/config\.toml with the new binary)$/m,
      );
      expect(r.stdout).toContain(
        `installed /usr/local/bin/fieldrelay (${readFileSync(join(DIST, "bundle/VERSION"), "utf8").trim()})`,
      );
    });
  },
);
