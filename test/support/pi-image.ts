/**
 * makePiImage builds a disk image shaped like Raspberry Pi OS, rootless and without loop mounts:
 *
 *   MBR, random disk id
 *   p1  FAT32 "bootfs" (type c) from sector 8192: config.txt, cmdline.txt (stock-shaped, root by
 *       PARTUUID=<id>-02, init=…/firstboot), overlays/, plus any `bootFiles`
 *   p2  ext4 "rootfs" (type 83): `rootfsDir` (or a minimal tree with etc/passwd, group, shadow,
 *       gshadow, hostname, hosts, systemd dirs), always with a stock-shaped /etc/fstab naming the
 *       disk id and an empty /boot/firmware mount point
 *
 * The ext4 is made with `mkfs.ext4 -d` as root, or under fakeroot otherwise, so every file is
 * owned as in the tree (uid 0 for a tree made by a non-root user). Device nodes, symlinks and
 * setuid bits in `rootfsDir` are kept. Used by the baker's tests and to turn a debootstrapped
 * arm64 tree into the boot test's base image.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { exec } from "../../deploy/image/exec.ts";
import { makeExt4 } from "../../deploy/image/ext4.ts";
import { FatVolume } from "../../deploy/image/fat.ts";

export interface PiImageOptions {
  out: string;
  /** Root file system tree; omitted → a minimal tree. Its /etc/fstab is replaced. */
  rootfsDir?: string;
  /** Extra files on the FAT partition, path (relative, "/"-separated) → content. */
  bootFiles?: Record<string, string | Buffer>;
  /** Root partition size; default: the tree's size plus a quarter plus 64 MiB. */
  rootSizeMiB?: number;
  /** Boot partition size; default 64 MiB (the stock image has 512). */
  bootSizeMiB?: number;
  /** MBR disk id (8 hex digits); default random. */
  diskId?: string;
}

export interface PiImage {
  diskId: string;
  bootStart: number;
  rootStart: number;
  rootSizeMiB: number;
}

const START = 8192;

export const STOCK_CONFIG_TXT = `# For more options and information see
# http://rptl.io/configtxt
# Some settings may impact device functionality. See link above for details

# Uncomment some or all of these to enable the optional hardware interfaces
#dtparam=i2c_arm=on
#dtparam=i2s=on
#dtparam=spi=on

# Enable audio (loads snd_bcm2835)
dtparam=audio=on

# Automatically load overlays for detected cameras
camera_auto_detect=1

# Automatically load overlays for detected DSI displays
display_auto_detect=1

# Automatically load initramfs files, if found
auto_initramfs=1

# Enable DRM VC4 V3D driver
dtoverlay=vc4-kms-v3d
max_framebuffers=2

# Don't have the firmware create an initial video= setting in cmdline.txt.
# Use the kernel's default instead.
disable_fw_kms_setup=1

# Run in 64-bit mode
arm_64bit=1

# Disable compensation for displays with overscan
disable_overscan=1

# Run as fast as firmware / board allows
arm_boost=1

[cm4]
# Enable host mode on the 2711 built-in XHCI USB controller.
# This line should be removed if the legacy DWC2 controller is required
# (e.g. for USB device mode) or if USB support is not required.
otg_mode=1

[all]
`;

export function stockCmdline(diskId: string): string {
  return `console=serial0,115200 console=tty1 root=PARTUUID=${diskId}-02 rootfstype=ext4 fsck.repair=yes rootwait init=/usr/lib/raspberrypi-sys-mods/firstboot\n`;
}

export function stockFstab(diskId: string): string {
  return `proc            /proc           proc    defaults          0       0
PARTUUID=${diskId}-01  /boot/firmware  vfat    defaults          0       2
PARTUUID=${diskId}-02  /               ext4    defaults,noatime  0       1
`;
}

function minimalRootfs(dir: string): void {
  const files: [string, string, number][] = [
    [
      "etc/passwd",
      "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
      0o644,
    ],
    ["etc/group", "root:x:0:\nshadow:x:42:\nnogroup:x:65534:\n", 0o644],
    ["etc/shadow", "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n", 0o640],
    ["etc/gshadow", "root:*::\nshadow:*::\nnogroup:*::\n", 0o640],
    ["etc/hostname", "raspberrypi\n", 0o644],
    [
      "etc/hosts",
      "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n\n127.0.1.1\traspberrypi\n",
      0o644,
    ],
    ["etc/fstab", "", 0o644],
    // Raspberry Pi OS bookworm manages the network with NetworkManager and ships a plain resolv.conf.
    ["etc/NetworkManager/NetworkManager.conf", "[main]\nplugins=ifupdown,keyfile\n", 0o644],
    ["etc/resolv.conf", "nameserver 192.168.1.1\n", 0o644],
  ];
  for (const d of [
    "etc/systemd/system/multi-user.target.wants",
    "etc/NetworkManager",
    "boot/firmware",
    "usr/local/bin",
    "usr/local/sbin",
    "var/lib",
    "tmp",
  ])
    mkdirSync(join(dir, d), { recursive: true });
  for (const [p, text, mode] of files) writeFileSync(join(dir, p), text, { mode });
}

function duMiB(dir: string): number {
  return Number(exec(["du", "-sm", "--apparent-size", dir]).stdout.toString().split("\t")[0]);
}

/** Build the image at `out` (replaced if present). */
export async function makePiImage(opts: PiImageOptions): Promise<PiImage> {
  const diskId = opts.diskId ?? randomBytes(4).toString("hex");
  const work = mkdtempSync(join(tmpdir(), "pi-image-"));
  try {
    let rootfs = opts.rootfsDir;
    if (!rootfs) {
      rootfs = join(work, "rootfs");
      minimalRootfs(rootfs);
    }
    const bootMiB = opts.bootSizeMiB ?? 64;
    const rootMiB = opts.rootSizeMiB ?? Math.max(64, Math.ceil(duMiB(rootfs) * 1.25) + 64);
    const bootSectors = bootMiB * 2048;
    const rootStart = START + bootSectors;
    const rootSectors = rootMiB * 2048;

    rmSync(opts.out, { force: true });
    exec(["truncate", "-s", String((rootStart + rootSectors) * 512), opts.out]);
    exec(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", opts.out], {
      input: `label: dos\nlabel-id: 0x${diskId}\nstart=${START}, size=${bootSectors}, type=c\nstart=${rootStart}, size=${rootSectors}, type=83\n`,
    });

    // FAT32 needs ≥ 65525 clusters: pick the biggest cluster (≤ 4 KiB) that still gives that.
    let spc = 8;
    while (spc > 1 && bootSectors / spc < 70_000) spc /= 2;
    exec([
      "mkfs.vfat",
      "-F",
      "32",
      "-s",
      String(spc),
      "-n",
      "bootfs",
      `--offset=${START}`,
      opts.out,
      String(bootMiB * 1024),
    ]);
    const fat = new FatVolume(opts.out, START * 512, bootSectors * 512);
    const bootFiles: Record<string, string | Buffer> = {
      "config.txt": STOCK_CONFIG_TXT,
      "cmdline.txt": stockCmdline(diskId),
      ...opts.bootFiles,
    };
    fat.mkdir("/overlays");
    for (const [path, content] of Object.entries(bootFiles)) {
      const host = join(work, "boot", path);
      mkdirSync(dirname(host), { recursive: true });
      writeFileSync(host, content);
      const parts = path.split("/").slice(0, -1);
      for (let i = 1; i <= parts.length; i++) fat.mkdir(`/${parts.slice(0, i).join("/")}`);
      fat.write(host, `/${path}`);
    }

    const rootOffset = rootStart * 512;
    const asRoot = process.getuid?.() === 0 ? [] : ["fakeroot"];
    const root = makeExt4({
      image: opts.out,
      offsetBytes: rootOffset,
      sizeBytes: rootSectors * 512,
      label: "rootfs",
      rootOwner: { uid: 0, gid: 0 },
      fromDir: rootfs,
      asRoot,
    });
    const fstab = join(work, "fstab");
    writeFileSync(fstab, stockFstab(diskId));
    const top = root.list(["/", "/boot", "/etc"]);
    const has = (dir: string, name: string) => top.get(dir)?.some((e) => e.name === name) ?? false;
    const cmds: string[] = [];
    if (!has("/", "etc")) cmds.push("mkdir /etc", "sif /etc mode 040755");
    if (!has("/", "boot")) cmds.push("mkdir /boot", "sif /boot mode 040755");
    if (!has("/boot", "firmware")) cmds.push("mkdir /boot/firmware", "sif /boot/firmware mode 040755");
    if (has("/etc", "fstab")) cmds.push("rm /etc/fstab");
    cmds.push(
      `write ${fstab} /etc/fstab`,
      "sif /etc/fstab mode 0100644",
      "sif /etc/fstab uid 0",
      "sif /etc/fstab gid 0",
    );
    root.apply(cmds);
    return { diskId, bootStart: START, rootStart, rootSizeMiB: rootMiB };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
