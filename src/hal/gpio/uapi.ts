/**
 * The GPIO character device uAPI v2 (linux/gpio.h) as numbers and byte layouts. Pure encoders
 * and decoders; test/unit/hal-layout.test.ts compares them byte for byte with gcc's view of the
 * kernel header. Layouts are the same on x86_64 and aarch64.
 *
 *   struct gpiochip_info                 68 bytes: name[32] @0, label[32] @32, lines u32 @64
 *   struct gpio_v2_line_attribute        16 bytes: id u32 @0, pad @4, flags|values u64 / debounce_period_us u32 @8
 *   struct gpio_v2_line_config_attribute 24 bytes: attr @0, mask u64 @16
 *   struct gpio_v2_line_config          272 bytes: flags u64 @0, num_attrs u32 @8, pad[5], attrs[10] @32
 *   struct gpio_v2_line_request         592 bytes: offsets u32[64] @0, consumer[32] @256, config @288,
 *                                                  num_lines u32 @560, event_buffer_size u32 @564, pad[5], fd s32 @588
 *   struct gpio_v2_line_info            256 bytes: name[32] @0, consumer[32] @32, offset u32 @64, num_attrs u32 @68,
 *                                                  flags u64 @72, attrs[10] @80, pad[4]
 *   struct gpio_v2_line_values           16 bytes: bits u64 @0, mask u64 @8
 *   struct gpio_v2_line_event            48 bytes: timestamp_ns u64 @0, id u32 @8, offset u32 @12, seqno u32 @16,
 *                                                  line_seqno u32 @20, pad[6]
 */

export const GPIO_GET_CHIPINFO_IOCTL = 0x8044b401;
export const GPIO_V2_GET_LINEINFO_IOCTL = 0xc100b405;
export const GPIO_V2_GET_LINE_IOCTL = 0xc250b407;
export const GPIO_V2_LINE_SET_CONFIG_IOCTL = 0xc110b40d;
export const GPIO_V2_LINE_GET_VALUES_IOCTL = 0xc010b40e;
export const GPIO_V2_LINE_SET_VALUES_IOCTL = 0xc010b40f;

export const GPIO_MAX_NAME_SIZE = 32;
export const GPIO_V2_LINES_MAX = 64;
export const GPIO_V2_LINE_NUM_ATTRS_MAX = 10;

export const GPIOCHIP_INFO_SIZE = 68;
export const GPIO_V2_LINE_ATTRIBUTE_SIZE = 16;
export const GPIO_V2_LINE_CONFIG_ATTRIBUTE_SIZE = 24;
export const GPIO_V2_LINE_CONFIG_SIZE = 272;
export const GPIO_V2_LINE_REQUEST_SIZE = 592;
export const GPIO_V2_LINE_INFO_SIZE = 256;
export const GPIO_V2_LINE_VALUES_SIZE = 16;
export const GPIO_V2_LINE_EVENT_SIZE = 48;

/** enum gpio_v2_line_flag */
export const LineFlag = {
  USED: 1n << 0n,
  ACTIVE_LOW: 1n << 1n,
  INPUT: 1n << 2n,
  OUTPUT: 1n << 3n,
  EDGE_RISING: 1n << 4n,
  EDGE_FALLING: 1n << 5n,
  OPEN_DRAIN: 1n << 6n,
  OPEN_SOURCE: 1n << 7n,
  BIAS_PULL_UP: 1n << 8n,
  BIAS_PULL_DOWN: 1n << 9n,
  BIAS_DISABLED: 1n << 10n,
  EVENT_CLOCK_REALTIME: 1n << 11n,
  EVENT_CLOCK_HTE: 1n << 12n,
} as const;

/** enum gpio_v2_line_attr_id */
export const AttrId = { FLAGS: 1, OUTPUT_VALUES: 2, DEBOUNCE: 3 } as const;

/** enum gpio_v2_line_event_id */
export const EventId = { RISING_EDGE: 1, FALLING_EDGE: 2 } as const;

export type LineAttribute =
  | { id: typeof AttrId.FLAGS; flags: bigint }
  | { id: typeof AttrId.OUTPUT_VALUES; values: bigint }
  | { id: typeof AttrId.DEBOUNCE; debounce_us: number };

/** An attribute applied to the lines whose bit is set in `mask` (bit i = i-th requested line). */
export type LineConfigAttribute = LineAttribute & { mask: bigint };

export interface LineConfig {
  flags: bigint;
  attrs: LineConfigAttribute[];
}

export interface ChipInfo {
  name: string;
  label: string;
  lines: number;
}

export interface LineInfo {
  name: string;
  consumer: string;
  offset: number;
  flags: bigint;
  debounce_us: number | undefined;
  output_values: bigint | undefined;
}

export interface LineEvent {
  timestamp_ns: bigint;
  id: number;
  offset: number;
  seqno: number;
  line_seqno: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function putString(bytes: Uint8Array, at: number, s: string, size: number): void {
  const encoded = encoder.encode(s);
  if (encoded.length >= size) throw new RangeError(`"${s}" is longer than ${size - 1} bytes`);
  bytes.set(encoded, at);
}

function getString(bytes: Uint8Array, at: number, size: number): string {
  const slice = bytes.subarray(at, at + size);
  const end = slice.indexOf(0);
  return decoder.decode(end < 0 ? slice : slice.subarray(0, end));
}

function putAttribute(view: DataView, at: number, attr: LineAttribute): void {
  view.setUint32(at, attr.id, true);
  if (attr.id === AttrId.FLAGS) view.setBigUint64(at + 8, attr.flags, true);
  else if (attr.id === AttrId.OUTPUT_VALUES) view.setBigUint64(at + 8, attr.values, true);
  else view.setUint32(at + 8, attr.debounce_us, true);
}

/** Write struct gpio_v2_line_config at `at` in `bytes` (zero-filled by the caller). */
export function putLineConfig(bytes: Uint8Array, at: number, config: LineConfig): void {
  if (config.attrs.length > GPIO_V2_LINE_NUM_ATTRS_MAX)
    throw new RangeError(`at most ${GPIO_V2_LINE_NUM_ATTRS_MAX} line attributes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setBigUint64(at, config.flags, true);
  view.setUint32(at + 8, config.attrs.length, true);
  config.attrs.forEach((a, i) => {
    const base = at + 32 + i * GPIO_V2_LINE_CONFIG_ATTRIBUTE_SIZE;
    putAttribute(view, base, a);
    view.setBigUint64(base + 16, a.mask, true);
  });
}

/** struct gpio_v2_line_config for GPIO_V2_LINE_SET_CONFIG_IOCTL. */
export function encodeLineConfig(config: LineConfig): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(GPIO_V2_LINE_CONFIG_SIZE));
  putLineConfig(out, 0, config);
  return out;
}

/** struct gpio_v2_line_request for GPIO_V2_GET_LINE_IOCTL; the kernel writes the line fd at 588. */
export function encodeLineRequest(request: {
  offsets: number[];
  consumer: string;
  config: LineConfig;
  event_buffer_size?: number;
}): Uint8Array {
  const { offsets } = request;
  if (offsets.length === 0 || offsets.length > GPIO_V2_LINES_MAX)
    throw new RangeError(`a line request takes 1 to ${GPIO_V2_LINES_MAX} lines`);
  const out = new Uint8Array(new ArrayBuffer(GPIO_V2_LINE_REQUEST_SIZE));
  const view = new DataView(out.buffer);
  offsets.forEach((o, i) => {
    view.setUint32(i * 4, o, true);
  });
  putString(out, 256, request.consumer, GPIO_MAX_NAME_SIZE);
  putLineConfig(out, 288, request.config);
  view.setUint32(560, offsets.length, true);
  view.setUint32(564, request.event_buffer_size ?? 0, true);
  return out;
}

/** The line request fd the kernel filled in. */
export function decodeLineRequestFd(request: Uint8Array): number {
  return new DataView(request.buffer, request.byteOffset, request.byteLength).getInt32(588, true);
}

export function decodeChipInfo(bytes: Uint8Array): ChipInfo {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    name: getString(bytes, 0, GPIO_MAX_NAME_SIZE),
    label: getString(bytes, 32, GPIO_MAX_NAME_SIZE),
    lines: view.getUint32(64, true),
  };
}

/** struct gpio_v2_line_info with only `offset` set, as GPIO_V2_GET_LINEINFO_IOCTL expects. */
export function encodeLineInfoQuery(offset: number): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(GPIO_V2_LINE_INFO_SIZE));
  new DataView(out.buffer).setUint32(64, offset, true);
  return out;
}

export function decodeLineInfo(bytes: Uint8Array): LineInfo {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const numAttrs = Math.min(view.getUint32(68, true), GPIO_V2_LINE_NUM_ATTRS_MAX);
  let debounce_us: number | undefined;
  let output_values: bigint | undefined;
  for (let i = 0; i < numAttrs; i++) {
    const at = 80 + i * GPIO_V2_LINE_ATTRIBUTE_SIZE;
    const id = view.getUint32(at, true);
    if (id === AttrId.DEBOUNCE) debounce_us = view.getUint32(at + 8, true);
    else if (id === AttrId.OUTPUT_VALUES) output_values = view.getBigUint64(at + 8, true);
  }
  return {
    name: getString(bytes, 0, GPIO_MAX_NAME_SIZE),
    consumer: getString(bytes, 32, GPIO_MAX_NAME_SIZE),
    offset: view.getUint32(64, true),
    flags: view.getBigUint64(72, true),
    debounce_us,
    output_values,
  };
}

/** struct gpio_v2_line_values: bit i is the i-th requested line; mask selects which count. */
export function encodeLineValues(bits: bigint, mask: bigint): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(GPIO_V2_LINE_VALUES_SIZE));
  const view = new DataView(out.buffer);
  view.setBigUint64(0, bits, true);
  view.setBigUint64(8, mask, true);
  return out;
}

export function decodeLineValues(bytes: Uint8Array): { bits: bigint; mask: bigint } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { bits: view.getBigUint64(0, true), mask: view.getBigUint64(8, true) };
}

/** Decode every whole struct gpio_v2_line_event in what one read() returned. */
export function decodeLineEvents(bytes: Uint8Array): LineEvent[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const events: LineEvent[] = [];
  for (let at = 0; at + GPIO_V2_LINE_EVENT_SIZE <= bytes.byteLength; at += GPIO_V2_LINE_EVENT_SIZE) {
    events.push({
      timestamp_ns: view.getBigUint64(at, true),
      id: view.getUint32(at + 8, true),
      offset: view.getUint32(at + 12, true),
      seqno: view.getUint32(at + 16, true),
      line_seqno: view.getUint32(at + 20, true),
    });
  }
  return events;
}
