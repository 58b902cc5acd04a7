/**
 * The seq side file `<queue.db>.seq`: the highest seq reserved, kept outside the database so that
 * seqs never repeat even when a corrupt database has to be moved aside.
 *
 * On-disk format (version 2), 128 bytes, written in place — a reservation never needs a new disk
 * block, so it works on a full disk:
 *
 *   slot 0 @0, slot 1 @64, each 64 bytes of ASCII:
 *     "FRSEQ2 <reserved, 16 decimal digits> <generation, 10 digits> <crc32 of the text before, 8 hex>\n"
 *     padded with spaces to 64 bytes.
 *
 * Writes alternate between the slots (generation parity) and each is followed by fdatasync, so a
 * torn write damages at most the slot being written; the reader takes the highest reserved value
 * among slots whose checksum holds. Version 1 (one decimal line, replaced through tmp + rename) is
 * still read; the first reservation converts it. The file is created (and its blocks allocated)
 * when the queue opens.
 *
 * State machine of one open SeqFile:
 *
 *   open ─► READY(reserved, generation) ──write(v ≥ reserved)──► READY(v, generation + 1)
 *                                        └─ write fails (EIO) ─► READY (unchanged; caller refuses)
 */
import { closeSync, constants, fdatasyncSync, fstatSync, openSync, readFileSync, writeSync } from "node:fs";

export function seqFilePath(dbPath: string): string {
  return `${dbPath}.seq`;
}

const SLOT = 64;
const MAGIC = "FRSEQ2";

function slotText(reserved: number, generation: number): Buffer {
  const body = `${MAGIC} ${String(reserved).padStart(16, "0")} ${String(generation).padStart(10, "0")}`;
  const crc = (Bun.hash.crc32(body) >>> 0).toString(16).padStart(8, "0");
  const line = `${body} ${crc}\n`;
  return Buffer.from(
    line
      .padEnd(SLOT - 1, " ")
      .concat("\n")
      .slice(0, SLOT),
    "latin1",
  );
}

function parseSlot(text: string): { reserved: number; generation: number } | undefined {
  const m = /^FRSEQ2 (\d{16}) (\d{10}) ([0-9a-f]{8})\n/.exec(text);
  if (!m) return undefined;
  const body = text.slice(0, MAGIC.length + 1 + 16 + 1 + 10);
  if ((Bun.hash.crc32(body) >>> 0).toString(16).padStart(8, "0") !== m[3]) return undefined;
  return { reserved: Number(m[1]), generation: Number(m[2]) };
}

/** The reserved high-water mark and generation found in a side file's text (0 when none is valid). */
export function parseSeqFile(text: string): { reserved: number; generation: number } {
  const legacy = text.trim();
  if (/^\d+$/.test(legacy) && Number.isSafeInteger(Number(legacy)))
    return { reserved: Number(legacy), generation: 0 };
  let best = { reserved: 0, generation: 0 };
  for (const at of [0, SLOT]) {
    const s = parseSlot(text.slice(at, at + SLOT));
    if (s && s.reserved >= best.reserved) best = s;
  }
  return best;
}

/** The reserved high-water mark from the side file, or 0 when absent or unreadable. */
export function readSeqFile(dbPath: string): number {
  try {
    return parseSeqFile(readFileSync(seqFilePath(dbPath), "latin1")).reserved;
  } catch {
    return 0;
  }
}

/** SeqFile is the open side file: reserve() rewrites one slot in place and syncs it. */
export class SeqFile {
  private constructor(
    private readonly fd: number,
    readonly path: string,
    private generation: number,
  ) {}

  /** Open (creating and allocating both slots when absent); throws on an I/O error. */
  static open(dbPath: string, floor: number): SeqFile {
    const path = seqFilePath(dbPath);
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
    try {
      const size = fstatSync(fd).size;
      const current = size > 0 ? parseSeqFile(readFileSync(path, "latin1")) : { reserved: 0, generation: 0 };
      const file = new SeqFile(fd, path, current.generation);
      if (size !== SLOT * 2 || current.generation === 0) {
        // New or version 1: write both slots now, while the disk still has room for them.
        const value = Math.max(current.reserved, floor);
        writeSync(fd, Buffer.concat([slotText(value, 1), slotText(value, 2)]), 0, SLOT * 2, 0);
        fdatasyncSync(fd);
        file.generation = 2;
      }
      return file;
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /** Make `reserved` durable before any seq up to it is handed out. Throws on an I/O error. */
  reserve(reserved: number): void {
    const generation = this.generation + 1;
    writeSync(this.fd, slotText(reserved, generation), 0, SLOT, (generation % 2) * SLOT);
    fdatasyncSync(this.fd);
    this.generation = generation;
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {}
  }
}
