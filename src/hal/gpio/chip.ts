/**
 * GPIO chips and line requests over the character device uAPI v2 (/dev/gpiochipN). Every ioctl
 * here is non-blocking (chip info, line info, request, get/set values, reconfigure); only waiting
 * for edges blocks, and that happens in a Worker (see events.ts).
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import * as libc from "../libc/index.ts";
import { Errno, SyscallError } from "../libc/index.ts";
import {
  GpioChipMissing,
  GpioLineBusy,
  GpioLineNotFound,
  GpioLineOutOfRange,
  GpioNotAChip,
} from "./errors.ts";
import { type LineSettings, lineConfig, packBits, unpackBits } from "./settings.ts";
import {
  type ChipInfo,
  decodeChipInfo,
  decodeLineInfo,
  decodeLineRequestFd,
  decodeLineValues,
  encodeLineConfig,
  encodeLineInfoQuery,
  encodeLineRequest,
  encodeLineValues,
  GPIO_GET_CHIPINFO_IOCTL,
  GPIO_V2_GET_LINE_IOCTL,
  GPIO_V2_GET_LINEINFO_IOCTL,
  GPIO_V2_LINE_GET_VALUES_IOCTL,
  GPIO_V2_LINE_SET_CONFIG_IOCTL,
  GPIO_V2_LINE_SET_VALUES_IOCTL,
  GPIOCHIP_INFO_SIZE,
  type LineInfo,
} from "./uapi.ts";

export const DEFAULT_CONSUMER = "fieldrelay";

/** /dev/gpiochipN paths under root, in chip-number order. */
export function chipPaths(root = "/"): string[] {
  const dev = join(root, "dev");
  let names: string[];
  try {
    names = readdirSync(dev);
  } catch {
    return [];
  }
  return names
    .filter((n) => /^gpiochip\d+$/.test(n))
    .sort((a, b) => Number(a.slice(8)) - Number(b.slice(8)))
    .map((n) => join(dev, n));
}

/** A chip given as "gpiochip0", "0" or a path, resolved under root. */
export function chipPath(chip: string | number, root = "/"): string {
  const s = String(chip);
  if (/^\d+$/.test(s)) return join(root, "dev", `gpiochip${s}`);
  if (/^gpiochip\d+$/.test(s)) return join(root, "dev", s);
  return s;
}

export class GpioChip {
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fd: number,
  ) {}

  /** Open a chip and check it answers GPIO_GET_CHIPINFO. */
  static open(path: string): GpioChip {
    let fd: number;
    try {
      fd = libc.open(path, libc.O_RDWR);
    } catch (error) {
      if (error instanceof SyscallError && error.errno === Errno.ENOENT) throw new GpioChipMissing(path);
      throw error;
    }
    const chip = new GpioChip(path, fd);
    try {
      chip.info();
    } catch (error) {
      chip.close();
      throw error;
    }
    return chip;
  }

  info(): ChipInfo {
    const buf = new Uint8Array(new ArrayBuffer(GPIOCHIP_INFO_SIZE));
    this.ioctl(GPIO_GET_CHIPINFO_IOCTL, buf, "ioctl(GPIO_GET_CHIPINFO)");
    return decodeChipInfo(buf);
  }

  lineInfo(offset: number): LineInfo {
    const buf = encodeLineInfoQuery(offset);
    this.ioctl(GPIO_V2_GET_LINEINFO_IOCTL, buf, "ioctl(GPIO_V2_GET_LINEINFO)");
    return decodeLineInfo(buf);
  }

  lines(): LineInfo[] {
    const { lines } = this.info();
    return Array.from({ length: lines }, (_, offset) => this.lineInfo(offset));
  }

  /** Request lines with one set of settings; EBUSY names the current consumer. */
  request(
    offsets: number[],
    settings: LineSettings,
    options: { consumer?: string; eventBufferSize?: number } = {},
  ): LineRequest {
    const { lines } = this.info();
    const outside = offsets.find((o) => o < 0 || o >= lines);
    if (outside !== undefined) throw new GpioLineOutOfRange(this.path, outside, lines);
    const buf = encodeLineRequest({
      offsets,
      consumer: options.consumer ?? DEFAULT_CONSUMER,
      config: lineConfig(settings, offsets.length),
      event_buffer_size: options.eventBufferSize ?? 0,
    });
    try {
      this.ioctl(GPIO_V2_GET_LINE_IOCTL, buf, "ioctl(GPIO_V2_GET_LINE)");
    } catch (error) {
      if (error instanceof SyscallError && error.errno === Errno.EBUSY) {
        const busy = offsets.find((o) => (this.lineInfo(o).flags & 1n) !== 0n) ?? offsets[0]!;
        throw new GpioLineBusy(this.path, busy, this.lineInfo(busy).consumer);
      }
      throw error;
    }
    return new LineRequest(this.path, decodeLineRequestFd(buf), offsets);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
  }

  private ioctl(request: number, buf: Uint8Array, name: string): void {
    try {
      libc.ioctl(this.fd, request, buf, this.path, name);
    } catch (error) {
      if (
        error instanceof SyscallError &&
        (error.errno === Errno.ENOTTY || error.errno === Errno.EINVAL) &&
        name === "ioctl(GPIO_GET_CHIPINFO)"
      )
        throw new GpioNotAChip(this.path, error.errno, name);
      throw error;
    }
  }
}

/** Find a line by name (e.g. "GPIO17") across every chip under root. */
export function findLine(name: string, root = "/"): { chip: string; offset: number; info: LineInfo } {
  const paths = chipPaths(root);
  for (const path of paths) {
    const chip = GpioChip.open(path);
    try {
      const found = chip.lines().find((l) => l.name === name);
      if (found) return { chip: path, offset: found.offset, info: found };
    } finally {
      chip.close();
    }
  }
  throw new GpioLineNotFound(name, paths);
}

/**
 * Where a configured line lives: an offset on the given chip (default gpiochip0), or a line name
 * looked up on the given chip or, without one, on every chip.
 */
export function resolveLine(
  line: number | string,
  chip: string | number | undefined,
  root = "/",
): { chip: string; offset: number } {
  if (typeof line === "number" || /^\d+$/.test(line))
    return { chip: chipPath(chip ?? 0, root), offset: Number(line) };
  if (chip === undefined) return findLine(line, root);
  const path = chipPath(chip, root);
  const opened = GpioChip.open(path);
  try {
    const found = opened.lines().find((l) => l.name === line);
    if (!found) throw new GpioLineNotFound(line, [path]);
    return { chip: path, offset: found.offset };
  } finally {
    opened.close();
  }
}

/** LineRequest is a set of requested lines: read, write and reconfigure them; close releases them. */
export class LineRequest {
  private closed = false;

  constructor(
    readonly chipPath: string,
    readonly fd: number,
    readonly offsets: number[],
  ) {}

  private get all(): bigint {
    return packBits(this.offsets.map(() => 1));
  }

  /** Logical values (active-low applied by the kernel), in request order. */
  getValues(): number[] {
    const buf = encodeLineValues(0n, this.all);
    libc.ioctl(this.fd, GPIO_V2_LINE_GET_VALUES_IOCTL, buf, this.chipPath, "ioctl(GPIO_V2_LINE_GET_VALUES)");
    return unpackBits(decodeLineValues(buf).bits, this.offsets.length);
  }

  setValues(values: number[]): void {
    if (values.length !== this.offsets.length) throw new RangeError(`expected ${this.offsets.length} values`);
    const buf = encodeLineValues(packBits(values), this.all);
    libc.ioctl(this.fd, GPIO_V2_LINE_SET_VALUES_IOCTL, buf, this.chipPath, "ioctl(GPIO_V2_LINE_SET_VALUES)");
  }

  reconfigure(settings: LineSettings): void {
    const buf = encodeLineConfig(lineConfig(settings, this.offsets.length));
    libc.ioctl(this.fd, GPIO_V2_LINE_SET_CONFIG_IOCTL, buf, this.chipPath, "ioctl(GPIO_V2_LINE_SET_CONFIG)");
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
  }
}
