/**
 * The image baker end to end: a synthetic Raspberry-Pi-OS-shaped base (makePiImage) is baked by
 * the CLI (`bun deploy/image/bake.ts`) and every file it should have written is read back from
 * the image with mtools and debugfs. Needs dist/ (npm run build).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ext4Volume } from "../../deploy/image/ext4.ts";
import { readPartitionTable } from "../../deploy/image/partitions.ts";
import { fstabMountPoints } from "../../deploy/image/plan.ts";
import { binaryMissing, DIST, REPO, Workspace } from "../support/fieldrelay.ts";
import { makePiImage } from "../support/pi-image.ts";

const ws = new Workspace();
afterAll(() => ws.cleanup());
const dir = ws.dir;

function runBake(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [join(REPO, "deploy/image/bake.ts"), ...args], {
    encoding: "utf8",
    env: { ...process.env, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const sh = (argv: string[]) => spawnSync(argv[0] as string, argv.slice(1), { encoding: "utf8" });

describe.skipIf(binaryMissing("arm64"))("Image baker", () => {
  const base = join(dir, "base.img");
  const out = join(dir, "device.img");
  let bundle: string;
  let diskId: string;
  let bake: ReturnType<typeof runBake>;
  let seconds: number;

  beforeAll(async () => {
    // The real bundle from `npm run build`: the ARM64 binary, install.sh and the device files.
    bundle = join(DIST, "bundle");
    diskId = (await makePiImage({ out: base, bootFiles: { "overlays/README": "stock overlays\n" } })).diskId;
    writeFileSync(join(dir, "my.toml"), '[device]\nid = "pi-baked"\n');
    const t = performance.now();
    bake = runBake([
      "--base",
      base,
      "--out",
      out,
      "--data-size",
      "64M",
      "--root-size",
      "256M",
      "--hostname",
      "pi-north-7",
      "--config",
      join(dir, "my.toml"),
      "--bundle",
      bundle,
    ]);
    seconds = (performance.now() - t) / 1000;
    console.log(`bake took ${seconds.toFixed(1)} s`);
  });

  const partition = (n: number) => {
    const t = readPartitionTable(out);
    const p = t?.partitions.find((x) => x.number === n);
    if (!p) throw new Error(`no partition ${n}`);
    return p;
  };
  const rootfs = () => new Ext4Volume(out, partition(2).start * 512);
  const datafs = () => new Ext4Volume(out, partition(3).start * 512);
  const fat = (path: string) =>
    sh(["mtype", "-i", `${out}@@${partition(1).start * 512}`, `::${path}`]).stdout;
  const stat = (fs: Ext4Volume, path: string) => sh(["debugfs", "-R", `stat ${path}`, fs.spec]).stdout;

  it("succeeds, prints a summary and leaves no partial file", () => {
    expect(bake.stderr).toBe("");
    expect(bake.code).toBe(0);
    expect(bake.stdout).toMatch(/bake: done in [\d.]+ s/);
    expect(readdirSync(dir).filter((f) => f.includes(".partial-"))).toEqual([]);
  });

  it("writes three partitions: boot and root where they were, root grown, data after root", () => {
    const t = readPartitionTable(out);
    expect(t?.diskId).toBe(diskId);
    expect(t?.partitions.map((p) => p.type)).toEqual(["c", "83", "83"]);
    const [boot, root, data] = t?.partitions ?? [];
    expect(boot?.start).toBe(8192);
    expect(root?.size).toBe(256 * 2048);
    expect(data?.start).toBeGreaterThanOrEqual((root?.start ?? 0) + (root?.size ?? 0));
    expect(data?.size).toBe(64 * 2048);
    expect(Number(rootfs().superblock().get("Block count")) * 4096).toBe(256 * 1024 * 1024);
  });

  it("names boot and root by PARTUUID of this disk id in fstab, data by label with data=journal", () => {
    const fstab = rootfs().read("/etc/fstab")?.toString() ?? "";
    expect(fstab).toMatch(new RegExp(`^PARTUUID=${diskId}-01\\s+/boot/firmware\\s`, "m"));
    expect(fstab).toMatch(new RegExp(`^PARTUUID=${diskId}-02\\s+/\\s`, "m"));
    expect(fstab).toMatch(/^LABEL=fieldrelay-data\s+\/var\/lib\/fieldrelay\s/m);
    expect(fstab).not.toContain("@");
  });

  it("points /etc/resolv.conf at NetworkManager's copy in /run, since the root is read-only", () => {
    const st = stat(rootfs(), "/etc/resolv.conf");
    expect(st).toMatch(/Type: symlink/);
    expect(st).toContain("/run/NetworkManager/resolv.conf");
    expect(bake.stdout).toContain("/etc/resolv.conf → /run/NetworkManager/resolv.conf");
  });

  it("creates every fstab mount point in the image, since a read-only root cannot create them at boot", () => {
    const fstab = rootfs().read("/etc/fstab")?.toString() ?? "";
    const points = fstabMountPoints(fstab);
    expect(points).toContain("/var/lib/dhcpcd");
    for (const dir of points) expect(stat(rootfs(), dir), dir).toMatch(/Type: directory/);
  });

  it("puts ro on the kernel command line exactly once and keeps the rest", () => {
    const cmdline = fat("cmdline.txt");
    expect(
      cmdline
        .trim()
        .split(/\s+/)
        .filter((a) => a === "ro"),
    ).toHaveLength(1);
    expect(cmdline).toContain(`root=PARTUUID=${diskId}-02`);
    expect(cmdline).toContain("init=/usr/lib/raspberrypi-sys-mods/firstboot");
    expect(cmdline.trim().split("\n")).toHaveLength(1);
  });

  it("adds the fieldrelay block to config.txt and the overlay next to the stock ones", () => {
    const config = fat("config.txt");
    expect(config).toContain("arm_64bit=1");
    expect(config).toContain("# >>> fieldrelay >>>");
    expect(config).toContain("dtoverlay=i2c-rtc,ds3231");
    expect(fat("overlays/README")).toBe("stock overlays\n");
    expect(sh(["mdir", "-b", "-i", `${out}@@${partition(1).start * 512}`, "::overlays"]).stdout).toContain(
      "fieldrelay-gpio.dtbo",
    );
  });

  it("makes the data partition ext4 labelled fieldrelay-data, journal_data by default, root owned by fieldrelay", () => {
    const sb = datafs().superblock();
    expect(sb.get("Filesystem volume name")).toBe("fieldrelay-data");
    expect(sb.get("Default mount options")).toContain("journal_data");
    const passwd = rootfs().read("/etc/passwd")?.toString() ?? "";
    const uid = /^fieldrelay:x:(\d+):(\d+):/m.exec(passwd);
    expect(uid).not.toBeNull();
    expect(stat(datafs(), "/")).toMatch(new RegExp(`User:\\s+${uid?.[1]}\\s+Group:\\s+${uid?.[2]}\\s`));
  });

  it("enables fieldrelay.service and the first-boot data grow by symlink", () => {
    const wants = sh([
      "debugfs",
      "-R",
      "ls -l /etc/systemd/system/multi-user.target.wants",
      rootfs().spec,
    ]).stdout;
    expect(wants).toContain("fieldrelay.service");
    expect(wants).toContain("fieldrelay-grow-data.service");
    expect(
      stat(rootfs(), "/etc/systemd/system/multi-user.target.wants/fieldrelay-grow-data.service"),
    ).toContain('Fast link dest: "/etc/systemd/system/fieldrelay-grow-data.service"');
    expect(rootfs().read("/etc/systemd/system/fieldrelay-grow-data.service")?.toString()).toContain(
      "Type=oneshot",
    );
    expect(stat(rootfs(), "/usr/local/sbin/fieldrelay-grow-data")).toMatch(/Mode:\s+0755/);
  });

  it("installs the ARM64 binary (ELF e_machine 0xB7) with mode 0755", () => {
    const bin = rootfs().read("/usr/local/bin/fieldrelay");
    expect(bin?.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
    expect(bin?.readUInt16LE(18)).toBe(0xb7);
    expect(stat(rootfs(), "/usr/local/bin/fieldrelay")).toMatch(/Mode:\s+0755/);
  });

  it("installs the given config, sets the host name and keeps the file systems clean", () => {
    expect(rootfs().read("/etc/fieldrelay/config.toml")?.toString()).toContain('id = "pi-baked"');
    expect(rootfs().read("/etc/hostname")?.toString()).toBe("pi-north-7\n");
    expect(rootfs().read("/etc/hosts")?.toString()).toMatch(/^127\.0\.1\.1\tpi-north-7$/m);
    expect(stat(rootfs(), "/etc/shadow")).toMatch(/Mode:\s+0640/);
    expect(sh(["e2fsck", "-fn", rootfs().spec]).status).toBe(0);
    expect(sh(["e2fsck", "-fn", datafs().spec]).status).toBe(0);
  });

  it("bakes an .xz base the same way", () => {
    sh(["xz", "-k", "-0", "-T1", base]);
    const r = runBake([
      "--base",
      `${base}.xz`,
      "--out",
      join(dir, "from-xz.img"),
      "--data-size",
      "32M",
      "--root-size",
      "128M",
      "--bundle",
      bundle,
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(readPartitionTable(join(dir, "from-xz.img"))?.partitions).toHaveLength(3);
  });

  describe("refusals", () => {
    it("refuses an image with one ext4 partition as not Raspberry Pi OS, leaving nothing", () => {
      const img = join(dir, "plain.img");
      sh(["truncate", "-s", "40M", img]);
      spawnSync("sfdisk", ["-q", img], { input: "start=2048, type=83\n" });
      sh(["mkfs.ext4", "-q", "-F", "-E", `offset=${2048 * 512}`, img, "30M"]);
      const r = runBake(["--base", img, "--out", join(dir, "plain-out.img"), "--bundle", bundle]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/is not a Raspberry Pi OS image: partition 1 is not a FAT boot partition/);
      expect(existsSync(join(dir, "plain-out.img"))).toBe(false);
      expect(readdirSync(dir).filter((f) => f.includes(".partial-"))).toEqual([]);
    });

    it("refuses a FAT+ext4 image whose boot partition has no config.txt", async () => {
      const img = join(dir, "noconfig.img");
      await makePiImage({ out: img, rootSizeMiB: 32 });
      sh(["mdel", "-i", `${img}@@${8192 * 512}`, "::config.txt"]);
      const r = runBake(["--base", img, "--out", join(dir, "noconfig-out.img"), "--bundle", bundle]);
      expect(r.stderr).toMatch(/partition 1 has no config.txt/);
      expect(existsSync(join(dir, "noconfig-out.img"))).toBe(false);
    });

    it("refuses --out that is the base, directly or through a symlink", () => {
      const link = join(dir, "link.img");
      symlinkSync(base, link);
      for (const o of [base, link, `${dir}/./base.img`]) {
        const r = runBake(["--base", base, "--out", o, "--bundle", bundle]);
        expect(r.code).toBe(64);
        expect(r.stderr).toMatch(/--out .* is the base image itself/);
      }
      expect(readPartitionTable(base)?.partitions).toHaveLength(2);
    });

    it("refuses absurd sizes and a bad host name with the option's name", () => {
      expect(runBake(["--base", base, "--out", join(dir, "x.img"), "--data-size", "lots"]).stderr).toMatch(
        /--data-size: "lots" is not a size/,
      );
      expect(
        runBake(["--base", base, "--out", join(dir, "x.img"), "--data-size", "1M", "--bundle", bundle])
          .stderr,
      ).toMatch(/--data-size 1 MiB is too small/);
      expect(
        runBake(["--base", base, "--out", join(dir, "x.img"), "--root-size", "16M", "--bundle", bundle])
          .stderr,
      ).toMatch(/smaller than the base's root/);
      expect(runBake(["--base", base, "--out", join(dir, "x.img"), "--hostname", "bad_name"]).stderr).toMatch(
        /--hostname "bad_name"/,
      );
      expect(existsSync(join(dir, "x.img"))).toBe(false);
    });

    it("refuses a missing bundle with a hint to build it", () => {
      const r = runBake(["--base", base, "--out", join(dir, "x.img"), "--bundle", join(dir, "nope")]);
      expect(r.stderr).toMatch(/install.sh is missing — run npm run build/);
    });

    it("leaves no partial or final output when a step fails mid-way", () => {
      for (const step of ["copy", "partition", "install", "data", "write"]) {
        const o = join(dir, `fail-${step}.img`);
        const r = runBake(
          ["--base", base, "--out", o, "--data-size", "32M", "--root-size", "128M", "--bundle", bundle],
          {
            FIELDRELAY_BAKE_FAIL_AFTER: step,
          },
        );
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`after step "${step}"`);
        expect(existsSync(o)).toBe(false);
        expect(readdirSync(dir).filter((f) => f.includes(".partial-"))).toEqual([]);
      }
    });

    it("refuses when the output disk is too small (a 64 MiB tmpfs), when one can be mounted", () => {
      const mnt = join(dir, "small");
      mkdirSync(mnt);
      const mounted = sh(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", mnt]).status === 0;
      if (!mounted) return; // the pure check is covered in test/unit/bake-plan.test.ts
      try {
        const r = runBake(["--base", base, "--out", join(mnt, "device.img"), "--bundle", bundle]);
        expect(r.stderr).toMatch(/not enough free space in .*small: the bake needs/);
        expect(readdirSync(mnt)).toEqual([]);
      } finally {
        sh(["umount", mnt]);
      }
    });
  });
});
