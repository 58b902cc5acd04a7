/**
 * Line settings in the words users know (direction, bias, edge, active-low, debounce) and their
 * translation to a uAPI v2 line config. Pure functions.
 */
import { AttrId, type LineConfig, type LineConfigAttribute, LineFlag } from "./uapi.ts";

export type Direction = "input" | "output";
export type Bias = "as-is" | "disable" | "pull-up" | "pull-down";
export type Edge = "none" | "rising" | "falling" | "both";
export type Drive = "push-pull" | "open-drain" | "open-source";

export interface LineSettings {
  direction: Direction;
  bias?: Bias;
  edge?: Edge;
  activeLow?: boolean;
  drive?: Drive;
  /** In-kernel debounce period for inputs, microseconds (0: none). */
  debounceUs?: number;
  /** Initial logical value of each output line, in request order. */
  outputValues?: number[];
}

/** The uAPI flags for one set of settings. */
export function settingsFlags(s: LineSettings): bigint {
  let flags = s.direction === "input" ? LineFlag.INPUT : LineFlag.OUTPUT;
  if (s.activeLow) flags |= LineFlag.ACTIVE_LOW;
  if (s.bias === "disable") flags |= LineFlag.BIAS_DISABLED;
  if (s.bias === "pull-up") flags |= LineFlag.BIAS_PULL_UP;
  if (s.bias === "pull-down") flags |= LineFlag.BIAS_PULL_DOWN;
  if (s.direction === "input") {
    if (s.edge === "rising" || s.edge === "both") flags |= LineFlag.EDGE_RISING;
    if (s.edge === "falling" || s.edge === "both") flags |= LineFlag.EDGE_FALLING;
  } else {
    if (s.edge && s.edge !== "none") throw new RangeError("edge detection needs an input line");
    if (s.drive === "open-drain") flags |= LineFlag.OPEN_DRAIN;
    if (s.drive === "open-source") flags |= LineFlag.OPEN_SOURCE;
  }
  return flags;
}

/** A line config applying the same settings to `count` lines. */
export function lineConfig(s: LineSettings, count: number): LineConfig {
  const all = count >= 64 ? 0xffff_ffff_ffff_ffffn : (1n << BigInt(count)) - 1n;
  const attrs: LineConfigAttribute[] = [];
  if (s.direction === "input" && s.debounceUs)
    attrs.push({ id: AttrId.DEBOUNCE, debounce_us: s.debounceUs, mask: all });
  if (s.direction === "output" && s.outputValues)
    attrs.push({ id: AttrId.OUTPUT_VALUES, values: packBits(s.outputValues), mask: all });
  return { flags: settingsFlags(s), attrs };
}

/** Bit i = values[i] (non-zero is 1). */
export function packBits(values: number[]): bigint {
  return values.reduce((bits, v, i) => (v ? bits | (1n << BigInt(i)) : bits), 0n);
}

export function unpackBits(bits: bigint, count: number): number[] {
  return Array.from({ length: count }, (_, i) => Number((bits >> BigInt(i)) & 1n));
}

/** Describe line info flags in words, for `fieldrelay gpio info`. */
export function describeFlags(flags: bigint): string[] {
  const words: string[] = [];
  if (flags & LineFlag.USED) words.push("used");
  words.push(flags & LineFlag.OUTPUT ? "output" : "input");
  if (flags & LineFlag.ACTIVE_LOW) words.push("active-low");
  if (flags & LineFlag.BIAS_PULL_UP) words.push("pull-up");
  if (flags & LineFlag.BIAS_PULL_DOWN) words.push("pull-down");
  if (flags & LineFlag.BIAS_DISABLED) words.push("bias-disabled");
  if (flags & LineFlag.OPEN_DRAIN) words.push("open-drain");
  if (flags & LineFlag.OPEN_SOURCE) words.push("open-source");
  const rising = (flags & LineFlag.EDGE_RISING) !== 0n;
  const falling = (flags & LineFlag.EDGE_FALLING) !== 0n;
  if (rising || falling) words.push(`edge-${rising && falling ? "both" : rising ? "rising" : "falling"}`);
  return words;
}
