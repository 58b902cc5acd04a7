/**
 * The pure decisions of a bake, separated from the tools that carry them out: where the
 * partitions go, what the kernel command line, fstab and hosts files become, and whether there
 * is room. Layout written by the baker (512-byte sectors, every start aligned to 4 MiB):
 *
 *   p1  FAT32 boot (from the base, unchanged)      PARTUUID=<diskid>-01  /boot/firmware
 *   p2  ext4 root  (from the base, grown at bake)  PARTUUID=<diskid>-02  /          (ro)
 *   p3  ext4 data  (new, label fieldrelay-data)    LABEL=fieldrelay-data /var/lib/fieldrelay
 *
 * The root is sized here because Raspberry Pi OS's first-boot resize only grows the LAST
 * partition; p3 is grown to the end of the card on first boot by fieldrelay-grow-data instead.
 */
import { BakeError } from "./exec.ts";
import type { PartitionTable } from "./partitions.ts";
import { formatSize, MiB } from "./size.ts";

export const SECTOR = 512;
export const ALIGN_SECTORS = 8192; // 4 MiB, like the stock image's first partition
export const DEFAULT_ROOT_HEADROOM = 1024 * MiB;
export const MIN_DATA_BYTES = 32 * MiB;
export const DATA_LABEL = "fieldrelay-data";
const MBR_MAX_SECTORS = 2 ** 32 - 1;
const FAT_TYPES = new Set(["b", "c", "e"]);

export interface Layout {
  diskId: string;
  boot: { start: number; size: number };
  root: { start: number; size: number; grownBy: number };
  data: { start: number; size: number };
  /** Size of the finished image file in bytes. */
  imageBytes: number;
}

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

/**
 * Check the base's partition table has the Raspberry Pi OS shape (p1 FAT, p2 Linux, nothing
 * after) and plan p2's new size and p3. Throws BakeError naming what is wrong.
 */
export function planLayout(
  table: PartitionTable | undefined,
  opts: { rootSizeBytes?: number; dataSizeBytes: number; base: string },
): Layout {
  const notPi = (why: string) =>
    new BakeError(`${opts.base} is not a Raspberry Pi OS image: ${why}`, {
      hint: "pass the .img or .img.xz downloaded from raspberrypi.com (Raspberry Pi OS Lite)",
      context: { base: opts.base },
    });
  if (table?.label !== "dos") throw notPi("it has no MBR (dos) partition table");
  if (table.sectorSize !== SECTOR) throw notPi(`its sectors are ${table.sectorSize} bytes, not 512`);
  const [boot, root, ...rest] = table.partitions;
  if (!boot || !FAT_TYPES.has(boot.type)) throw notPi("partition 1 is not a FAT boot partition");
  if (root?.type !== "83") throw notPi("partition 2 is not a Linux (ext4) root partition");
  if (rest.length)
    throw new BakeError(`${opts.base} already has ${table.partitions.length} partitions`, {
      hint: "bake from the stock two-partition image, not from an image that was already baked",
    });

  const rootBytes = root.size * SECTOR;
  const wanted = opts.rootSizeBytes ?? rootBytes + DEFAULT_ROOT_HEADROOM;
  if (wanted < rootBytes)
    throw new BakeError(
      `--root-size ${formatSize(wanted)} is smaller than the base's root (${formatSize(rootBytes)})`,
      {
        hint: "the baker only grows the root; leave --root-size out for the default headroom",
      },
    );
  const rootSize = alignUp(wanted, 4096) / SECTOR;
  if (opts.dataSizeBytes < MIN_DATA_BYTES)
    throw new BakeError(`--data-size ${formatSize(opts.dataSizeBytes)} is too small`, {
      hint: `give at least ${formatSize(MIN_DATA_BYTES)}; it grows to fill the card on first boot anyway`,
    });
  const dataStart = alignUp(root.start + rootSize, ALIGN_SECTORS);
  const dataSize = Math.floor(opts.dataSizeBytes / 4096) * (4096 / SECTOR);
  const end = dataStart + dataSize;
  if (end > MBR_MAX_SECTORS)
    throw new BakeError(
      `the image would be ${formatSize(end * SECTOR)}, past the 2 TiB limit of an MBR disk`,
      {
        hint: "use a smaller --root-size or --data-size (the data partition grows on first boot)",
      },
    );
  return {
    diskId: table.diskId,
    boot: { start: boot.start, size: boot.size },
    root: { start: root.start, size: rootSize, grownBy: (rootSize - root.size) * SECTOR },
    data: { start: dataStart, size: dataSize },
    imageBytes: end * SECTOR,
  };
}

/** cmdline.txt with `ro` exactly once and no `rw`; one line, as the firmware wants it. */
export function readOnlyCmdline(cmdline: string): string {
  const args = cmdline
    .trim()
    .split(/\s+/)
    .filter((a) => a && a !== "rw" && a !== "ro");
  const at = args.findIndex((a) => a.startsWith("root="));
  args.splice(at < 0 ? args.length : at + 1, 0, "ro");
  return `${args.join(" ")}\n`;
}

export interface FstabDevices {
  boot: string;
  root: string;
  data: string;
}

/** The devices the fstab names: boot and root by PARTUUID (as the stock image), data by label. */
export function fstabDevices(diskId: string): FstabDevices {
  return { boot: `PARTUUID=${diskId}-01`, root: `PARTUUID=${diskId}-02`, data: `LABEL=${DATA_LABEL}` };
}

/** Fill @BOOT_DEV@ @ROOT_DEV@ @DATA_DEV@ in the fstab template; every one must be used and known. */
export function renderFstab(template: string, devices: FstabDevices): string {
  const values: Record<string, string> = {
    BOOT_DEV: devices.boot,
    ROOT_DEV: devices.root,
    DATA_DEV: devices.data,
  };
  for (const key of Object.keys(values))
    if (!template.includes(`@${key}@`))
      throw new BakeError(`the fstab template has no @${key}@ placeholder`, {
        hint: "deploy/device/fstab.ro-root must name the boot, root and data devices by placeholder",
      });
  const out = template.replace(/@([A-Z_]+)@/g, (whole, key: string) => {
    const v = values[key];
    if (v === undefined)
      throw new BakeError(`the fstab template has an unknown placeholder ${whole}`, {
        hint: "known placeholders: @BOOT_DEV@ @ROOT_DEV@ @DATA_DEV@",
      });
    return v;
  });
  return out.endsWith("\n") ? out : `${out}\n`;
}

/**
 * The mount points an fstab names (other than / and swap). A read-only root cannot create a
 * missing one at boot, so the image must already hold every one.
 */
export function fstabMountPoints(fstab: string): string[] {
  const points: string[] = [];
  for (const line of fstab.split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 3 || (fields[0] as string).startsWith("#")) continue;
    const [, dir, type] = fields as [string, string, string];
    if (dir.startsWith("/") && dir !== "/" && type !== "swap") points.push(dir);
  }
  return points;
}

/** A hostname is one RFC 1123 label: letters, digits, hyphens, 1–63 chars, no leading/trailing hyphen. */
export function checkHostname(name: string): string {
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(name))
    throw new BakeError(`--hostname "${name}" is not a valid host name`, {
      hint: "use letters, digits and hyphens (at most 63), not starting or ending with a hyphen",
    });
  return name;
}

/** /etc/hosts with the 127.0.1.1 line naming `hostname` (added when absent). */
export function hostsWithHostname(hosts: string, hostname: string): string {
  const lines = hosts.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const i = lines.findIndex((l) => /^127\.0\.1\.1\s/.test(l));
  const line = `127.0.1.1\t${hostname}`;
  if (i >= 0) lines[i] = line;
  else lines.push(line);
  return `${lines.join("\n")}\n`;
}

/** Refuse when the output directory cannot hold `needBytes` (the decompressed base plus what the bake adds). */
export function checkFreeSpace(needBytes: number, freeBytes: number, dir: string): void {
  if (freeBytes < needBytes)
    throw new BakeError(
      `not enough free space in ${dir}: the bake needs ${formatSize(needBytes)}, ${formatSize(freeBytes)} is free`,
      { hint: "free some space or write --out to another disk", context: { dir, needBytes, freeBytes } },
    );
}
