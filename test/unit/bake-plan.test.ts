import { describe, expect, it } from "vitest";
import { parseLsBatch } from "../../deploy/image/ext4.ts";
import { type PartitionTable, parseSfdiskJson } from "../../deploy/image/partitions.ts";
import {
  checkFreeSpace,
  checkHostname,
  fstabDevices,
  fstabMountPoints,
  hostsWithHostname,
  planLayout,
  readOnlyCmdline,
  renderFstab,
} from "../../deploy/image/plan.ts";
import { formatSize, parseSize } from "../../deploy/image/size.ts";
import {
  diffSnapshots,
  ext4Commands,
  type Snapshot,
  type StagedEntry,
  userIds,
} from "../../deploy/image/stage.ts";

const MiB = 1024 * 1024;
const stock = (
  parts = [
    { number: 1, start: 8192, size: 1048576, type: "c" },
    { number: 2, start: 1056768, size: 4194304, type: "83" },
  ],
): PartitionTable => ({ label: "dos", diskId: "1234abcd", sectorSize: 512, partitions: parts });

describe("Bake sizes", () => {
  it("parses binary units with or without iB", () => {
    expect(parseSize("1G", "--data-size")).toBe(1024 ** 3);
    expect(parseSize("512M", "--data-size")).toBe(512 * MiB);
    expect(parseSize("2GiB", "--data-size")).toBe(2 * 1024 ** 3);
    expect(parseSize("1.5g", "--data-size")).toBe(1.5 * 1024 ** 3);
    expect(parseSize("4096", "--data-size")).toBe(4096);
  });
  it("refuses garbage, negative and ambiguous decimal units, naming the option", () => {
    for (const bad of ["", "big", "-1G", "1GB", "1 X", "1e3"])
      expect(() => parseSize(bad, "--root-size")).toThrow(/--root-size/);
  });
  it("formats sizes for people", () => {
    expect(formatSize(1536 * MiB)).toBe("1.5 GiB");
    expect(formatSize(64 * MiB)).toBe("64 MiB");
    expect(formatSize(10)).toBe("10 B");
  });
});

describe("Bake layout plan", () => {
  it("grows the root by 1 GiB by default and puts data after it on a 4 MiB boundary", () => {
    const l = planLayout(stock(), { dataSizeBytes: 1024 * MiB, base: "b.img" });
    expect(l.root).toEqual({ start: 1056768, size: 4194304 + 2097152, grownBy: 1024 * MiB });
    expect(l.data.start % 8192).toBe(0);
    expect(l.data.start).toBeGreaterThanOrEqual(l.root.start + l.root.size);
    expect(l.data.size).toBe(2097152);
    expect(l.imageBytes).toBe((l.data.start + l.data.size) * 512);
  });
  it("sizes the root to --root-size exactly, rounded up to 4 KiB", () => {
    const l = planLayout(stock(), { rootSizeBytes: 3 * 1024 ** 3 + 1, dataSizeBytes: 64 * MiB, base: "b" });
    expect(l.root.size * 512).toBe(3 * 1024 ** 3 + 4096);
  });
  it("refuses to shrink the root, a tiny data partition and an image past the MBR limit", () => {
    expect(() => planLayout(stock(), { rootSizeBytes: MiB, dataSizeBytes: 64 * MiB, base: "b" })).toThrow(
      /smaller than/,
    );
    expect(() => planLayout(stock(), { dataSizeBytes: MiB, base: "b" })).toThrow(/too small/);
    expect(() => planLayout(stock(), { dataSizeBytes: 3 * 1024 ** 4, base: "b" })).toThrow(/2 TiB/);
  });
  it("refuses tables that are not Raspberry Pi OS shaped, saying why", () => {
    const only = (parts: PartitionTable["partitions"]) =>
      planLayout(stock(parts), { dataSizeBytes: 64 * MiB, base: "x.img" });
    expect(() => planLayout(undefined, { dataSizeBytes: 64 * MiB, base: "x.img" })).toThrow(
      /not a Raspberry Pi OS image: it has no MBR/,
    );
    expect(() => only([{ number: 1, start: 2048, size: 1000, type: "83" }])).toThrow(
      /partition 1 is not a FAT/,
    );
    expect(() => only([{ number: 1, start: 2048, size: 1000, type: "c" }])).toThrow(
      /partition 2 is not a Linux/,
    );
    expect(() =>
      only([
        { number: 1, start: 8192, size: 8192, type: "c" },
        { number: 2, start: 16384, size: 8192, type: "83" },
        { number: 3, start: 24576, size: 8192, type: "83" },
      ]),
    ).toThrow(/already has 3 partitions/);
    expect(() => planLayout({ ...stock(), label: "gpt" }, { dataSizeBytes: 64 * MiB, base: "x" })).toThrow(
      /no MBR/,
    );
  });
  it("reads sfdisk's JSON with the disk id as 8 lowercase hex digits", () => {
    const t = parseSfdiskJson(
      JSON.stringify({
        partitiontable: {
          label: "dos",
          id: "0x0A1b2c",
          sectorsize: 512,
          partitions: [{ node: "x.img1", start: 8192, size: 10, type: "c" }],
        },
      }),
    );
    expect(t.diskId).toBe("000a1b2c");
    expect(t.partitions).toEqual([{ number: 1, start: 8192, size: 10, type: "c" }]);
  });
});

describe("Bake fstab mount points", () => {
  it("lists every mount point except / and swap, skipping comments and blank lines", () => {
    const fstab = [
      "# <file system> <dir> <type>",
      "",
      "proc /proc proc defaults 0 0",
      "PARTUUID=ab-02 / ext4 ro 0 1",
      "LABEL=fieldrelay-data /var/lib/fieldrelay ext4 data=journal 0 2",
      "tmpfs /var/lib/dhcpcd tmpfs size=1m,nofail 0 0",
      "/swapfile none swap sw 0 0",
    ].join("\n");
    expect(fstabMountPoints(fstab)).toEqual(["/proc", "/var/lib/fieldrelay", "/var/lib/dhcpcd"]);
  });
});

describe("Bake kernel command line", () => {
  const stockLine =
    "console=serial0,115200 console=tty1 root=PARTUUID=1234abcd-02 rootfstype=ext4 fsck.repair=yes rootwait init=/usr/lib/raspberrypi-sys-mods/firstboot\n";
  it("adds ro right after root= and keeps one line", () => {
    expect(readOnlyCmdline(stockLine)).toBe(
      "console=serial0,115200 console=tty1 root=PARTUUID=1234abcd-02 ro rootfstype=ext4 fsck.repair=yes rootwait init=/usr/lib/raspberrypi-sys-mods/firstboot\n",
    );
  });
  it("is idempotent and replaces rw", () => {
    const once = readOnlyCmdline(stockLine);
    expect(readOnlyCmdline(once)).toBe(once);
    const line = readOnlyCmdline("root=/dev/mmcblk0p2 rw ro quiet ro");
    expect(line.split(" ").filter((a) => a.trim() === "ro")).toHaveLength(1);
    expect(line).not.toMatch(/\brw\b/);
  });
});

describe("Bake fstab", () => {
  it("fills the boot and root PARTUUIDs from the disk id and data by label", () => {
    const out = renderFstab(
      "@BOOT_DEV@ /boot/firmware\n@ROOT_DEV@ /\n@DATA_DEV@ /var/lib/fieldrelay",
      fstabDevices("1234abcd"),
    );
    expect(out).toBe(
      "PARTUUID=1234abcd-01 /boot/firmware\nPARTUUID=1234abcd-02 /\nLABEL=fieldrelay-data /var/lib/fieldrelay\n",
    );
  });
  it("refuses a template missing a placeholder or with an unknown one", () => {
    expect(() => renderFstab("@BOOT_DEV@ @ROOT_DEV@", fstabDevices("1"))).toThrow(/@DATA_DEV@/);
    expect(() => renderFstab("@BOOT_DEV@ @ROOT_DEV@ @DATA_DEV@ @SWAP_DEV@", fstabDevices("1"))).toThrow(
      /@SWAP_DEV@/,
    );
  });
});

describe("Bake host name and free space", () => {
  it("accepts RFC 1123 labels and refuses others", () => {
    expect(checkHostname("pi-north-7")).toBe("pi-north-7");
    for (const bad of ["-pi", "pi-", "pi_7", "a".repeat(64), "pi.local", ""])
      expect(() => checkHostname(bad)).toThrow(/--hostname/);
  });
  it("rewrites or adds the 127.0.1.1 line", () => {
    expect(hostsWithHostname("127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n", "pi7")).toBe(
      "127.0.0.1\tlocalhost\n127.0.1.1\tpi7\n",
    );
    expect(hostsWithHostname("127.0.0.1\tlocalhost\n", "pi7")).toBe("127.0.0.1\tlocalhost\n127.0.1.1\tpi7\n");
  });
  it("refuses when the output directory has less free space than needed, with both figures", () => {
    expect(() => checkFreeSpace(3 * 1024 ** 3, 512 * MiB, "/out")).toThrow(
      /not enough free space in \/out: the bake needs 3 GiB, 512 MiB is free/,
    );
    expect(() => checkFreeSpace(MiB, MiB, "/out")).not.toThrow();
  });
});

describe("Bake write-back", () => {
  const e = (path: string, type: StagedEntry["type"], extra: Partial<StagedEntry> = {}): StagedEntry => ({
    path,
    type,
    mode: type === "d" ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    ...extra,
  });
  const snap = (...entries: StagedEntry[]): Snapshot => new Map(entries.map((x) => [x.path, x]));

  it("writes only what changed, parents first, and removes what disappeared", () => {
    const before = snap(
      e("etc", "d"),
      e("etc/passwd", "f", { digest: "a" }),
      e("etc/motd", "f", { digest: "m" }),
      e("etc/hosts", "f", { digest: "h" }),
    );
    const after = snap(
      e("etc", "d"),
      e("etc/passwd", "f", { digest: "b" }),
      e("etc/hosts", "f", { digest: "h" }),
      e("etc/fieldrelay/config.toml", "f", { digest: "c", mode: 0o640, gid: 997 }),
      e("etc/fieldrelay", "d"),
    );
    const { changed, removed } = diffSnapshots(before, after);
    expect(changed.map((x) => x.path)).toEqual([
      "etc/fieldrelay",
      "etc/fieldrelay/config.toml",
      "etc/passwd",
    ]);
    expect(removed.map((x) => x.path)).toEqual(["etc/motd"]);
    expect(ext4Commands(changed, removed, before, new Set(), "/S")).toEqual([
      "rm /etc/motd",
      "mkdir /etc/fieldrelay",
      "sif /etc/fieldrelay mode 040755",
      "sif /etc/fieldrelay uid 0",
      "sif /etc/fieldrelay gid 0",
      "write /S/etc/fieldrelay/config.toml /etc/fieldrelay/config.toml",
      "sif /etc/fieldrelay/config.toml mode 0100640",
      "sif /etc/fieldrelay/config.toml uid 0",
      "sif /etc/fieldrelay/config.toml gid 997",
      "rm /etc/passwd",
      "write /S/etc/passwd /etc/passwd",
      "sif /etc/passwd mode 0100644",
      "sif /etc/passwd uid 0",
      "sif /etc/passwd gid 0",
    ]);
  });
  it("keeps setuid bits, writes symlinks, replaces unstaged files and leaves unstaged directories alone", () => {
    const after = snap(
      e("usr", "d"),
      e("usr/bin/x", "f", { mode: 0o4755, digest: "x" }),
      e("etc/l", "l", { target: "/t" }),
    );
    const cmds = ext4Commands([...after.values()], [], new Map(), new Set(["usr", "usr/bin/x"]), "/S");
    expect(cmds).toEqual([
      "rm /usr/bin/x",
      "write /S/usr/bin/x /usr/bin/x",
      "sif /usr/bin/x mode 0104755",
      "sif /usr/bin/x uid 0",
      "sif /usr/bin/x gid 0",
      "symlink /etc/l /t",
      "sif /etc/l uid 0",
      "sif /etc/l gid 0",
    ]);
  });
  it("quotes paths with spaces for debugfs", () => {
    expect(ext4Commands([e("a b", "d")], [], new Map(), new Set(), "/S")[0]).toBe('mkdir "/a b"');
  });
  it("parses debugfs ls -p batches and finds a user's ids", () => {
    const m = parseLsBatch(
      "debugfs: ls -p /etc\n/14/040755/0/0/.//\n/2/040755/0/0/..//\n/15/100640/0/42/shadow/2/\n\ndebugfs: ls -p /nope\n",
    );
    expect(m.get("/etc")).toEqual([{ name: "shadow", mode: 0o100640, uid: 0, gid: 42 }]);
    expect(m.get("/nope")).toEqual([]);
    expect(
      userIds(
        "root:x:0:0::/:/bin/sh\nfieldrelay:x:999:997::/var/lib/fieldrelay:/usr/sbin/nologin\n",
        "fieldrelay",
      ),
    ).toEqual({ uid: 999, gid: 997 });
    expect(userIds("root:x:0:0::/:/bin/sh\n", "fieldrelay")).toBeUndefined();
  });
});
