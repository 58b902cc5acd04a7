/**
 * The on-disk format of a dm-log-writes log device, decoded (pure: bytes in, records out).
 * Written from the kernel's description (Documentation/admin-guide/device-mapper/log-writes.rst
 * and the structs in drivers/md/dm-log-writes.c), little-endian throughout:
 *
 *   log sector 0          super:  u64 magic (0x6a736677736872), u64 version (1),
 *                                 u64 nr_entries, u32 sectorsize
 *   then, from log sector 1, nr_entries entries, each:
 *     one log sector      header: u64 sector, u64 nr_sectors, u64 flags, u64 data_len
 *                                 (a MARK's name, data_len bytes, follows the header in the same
 *                                 log sector)
 *     nr_sectors sectors  the data written — absent for DISCARD and MARK entries
 *
 * `sector` and `nr_sectors` count sectors of `sectorsize` bytes (the logged device's logical block
 * size); the log advances by nr_sectors + 1 of them per entry (1 for a discard or a mark).
 *
 * What the order means (why replaying prefixes gives crash states): the target logs a plain write
 * only when a later FLUSH covers it, and then just before that FLUSH entry; FUA writes and marks
 * are logged as soon as they complete. So the state after the entry of a FLUSH or FUA is one the
 * device had durably at that instant, and the plain writes logged just before a FLUSH are the ones
 * a power cut before that flush may have kept in any subset.
 */

export const LOG_WRITES_MAGIC = 0x6a736677736872n;
export const LOG_WRITES_VERSION = 1n;

export const FLAG_FLUSH = 1 << 0;
export const FLAG_FUA = 1 << 1;
export const FLAG_DISCARD = 1 << 2;
export const FLAG_MARK = 1 << 3;
export const FLAG_METADATA = 1 << 4;

const HEADER_BYTES = 32;

export class LogFormatError extends Error {
  constructor(
    message: string,
    readonly context: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "LogFormatError";
  }
}

export interface LogSuper {
  nrEntries: number;
  /** Bytes per sector in the log and in the entries' sector numbers. */
  sectorSize: number;
}

export type EntryKind = "write" | "flush" | "discard" | "mark";

export interface LogEntry {
  /** 0-based position in the log. */
  index: number;
  kind: EntryKind;
  flags: number;
  /** First sector written/discarded on the logged device (sectorSize units). */
  sector: number;
  nrSectors: number;
  /** Byte offset of the data in the log device (writes only). */
  dataOffset: number;
  /** The mark's name (marks only). */
  mark?: string;
}

function u64(bytes: Uint8Array, at: number, what: string): number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new LogFormatError(`${what} ${v} is out of range`, { at });
  return Number(v);
}

/** Decodes the super block (the first bytes of the log device). */
export function decodeSuper(bytes: Uint8Array): LogSuper {
  if (bytes.byteLength < 28) throw new LogFormatError(`super block is ${bytes.byteLength} bytes, need 28`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getBigUint64(0, true);
  if (magic !== LOG_WRITES_MAGIC) {
    throw new LogFormatError(
      `not a dm-log-writes log: magic 0x${magic.toString(16)}, expected 0x${LOG_WRITES_MAGIC.toString(16)}`,
    );
  }
  const version = view.getBigUint64(8, true);
  if (version !== LOG_WRITES_VERSION) throw new LogFormatError(`log version ${version}, this reader knows 1`);
  const nrEntries = u64(bytes, 16, "nr_entries");
  const sectorSize = view.getUint32(24, true);
  if (sectorSize < 512 || (sectorSize & (sectorSize - 1)) !== 0)
    throw new LogFormatError(`sectorsize ${sectorSize} is not a power of two ≥ 512`);
  return { nrEntries, sectorSize };
}

/** The kind of an entry from its flags: a mark or discard is that; an empty FLUSH is a flush. */
export function entryKind(flags: number, nrSectors: number): EntryKind {
  if (flags & FLAG_MARK) return "mark";
  if (flags & FLAG_DISCARD) return "discard";
  if (nrSectors === 0) return "flush";
  return "write";
}

/**
 * Decodes the entry header in `header` (one log sector) found at byte `offset` of the log.
 * Returns the entry and the byte offset of the next one.
 */
export function decodeEntry(
  header: Uint8Array,
  offset: number,
  index: number,
  sectorSize: number,
): { entry: LogEntry; next: number } {
  if (header.byteLength < HEADER_BYTES)
    throw new LogFormatError(`entry ${index} at byte ${offset}: header is truncated`, { index, offset });
  const sector = u64(header, 0, "sector");
  const nrSectors = u64(header, 8, "nr_sectors");
  const flags = u64(header, 16, "flags");
  const dataLen = u64(header, 24, "data_len");
  const kind = entryKind(flags, nrSectors);
  const entry: LogEntry = { index, kind, flags, sector, nrSectors, dataOffset: offset + sectorSize };
  if (kind === "mark") {
    if (dataLen > sectorSize - HEADER_BYTES)
      throw new LogFormatError(`entry ${index}: mark of ${dataLen} bytes does not fit its sector`, { index });
    entry.mark = new TextDecoder().decode(header.subarray(HEADER_BYTES, HEADER_BYTES + dataLen));
  }
  const dataSectors = kind === "write" || (kind === "flush" && nrSectors > 0) ? nrSectors : 0;
  return { entry, next: offset + sectorSize * (1 + dataSectors) };
}

/** True when the device had everything up to and including this entry durably. */
export function isDurabilityPoint(e: LogEntry): boolean {
  return (e.flags & (FLAG_FLUSH | FLAG_FUA)) !== 0;
}

/** True when the entry carries data to write to the device. */
export function writesData(e: LogEntry): boolean {
  return e.kind === "write" || (e.kind === "flush" && e.nrSectors > 0);
}
