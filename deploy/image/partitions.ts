/**
 * The image's MBR partition table, read with `sfdisk --json` and changed with sfdisk scripts.
 * Sectors are 512 bytes (sfdisk reports the size; the baker refuses anything else). The disk id
 * is the MBR signature; Raspberry Pi OS names partitions PARTUUID=<diskid>-0N in fstab and cmdline.txt.
 */
import { exec } from "./exec.ts";

export interface Partition {
  /** 1-based partition number (p1 = boot, p2 = root, p3 = data). */
  number: number;
  start: number;
  size: number;
  /** MBR type in hex, lowercase without 0x: "c" (FAT32 LBA), "83" (Linux). */
  type: string;
}

export interface PartitionTable {
  label: string;
  /** MBR disk id as 8 lowercase hex digits, e.g. "1234abcd". */
  diskId: string;
  sectorSize: number;
  partitions: Partition[];
}

interface SfdiskJson {
  partitiontable: {
    label: string;
    id?: string;
    sectorsize?: number;
    partitions?: { node: string; start: number; size: number; type: string }[];
  };
}

/** Parse `sfdisk --json` output (pure, for tests). */
export function parseSfdiskJson(json: string): PartitionTable {
  const t = (JSON.parse(json) as SfdiskJson).partitiontable;
  return {
    label: t.label,
    diskId: (t.id ?? "").replace(/^0x/i, "").toLowerCase().padStart(8, "0"),
    sectorSize: t.sectorsize ?? 512,
    partitions: (t.partitions ?? []).map((p) => ({
      number: Number(/(\d+)$/.exec(p.node)?.[1] ?? 0),
      start: p.start,
      size: p.size,
      type: p.type.replace(/^0x/i, "").toLowerCase(),
    })),
  };
}

/** Read the table, or undefined when the file has none sfdisk recognises. */
export function readPartitionTable(img: string): PartitionTable | undefined {
  try {
    return parseSfdiskJson(exec(["sfdisk", "--json", img]).stdout.toString());
  } catch {
    return undefined;
  }
}

/** Set partition `number` to `sizeSectors` keeping its start (only growing is used). */
export function resizePartition(img: string, number: number, sizeSectors: number): void {
  exec(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", "-N", String(number), img], {
    input: `, ${sizeSectors}\n`,
  });
}

/** Append one partition at `start` of `sizeSectors` with MBR `type`. */
export function appendPartition(img: string, start: number, sizeSectors: number, type: string): void {
  exec(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", "--append", img], {
    input: `start=${start}, size=${sizeSectors}, type=${type}\n`,
  });
}
