/**
 * Sizes on the command line: "1G", "512M", "1GiB", "2048K", "1073741824". Units are binary
 * (K=1024), like dd, sfdisk and mkfs; a decimal "GB" is refused because it is ambiguous.
 */
import { BakeError } from "./exec.ts";

const UNITS: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };
export const MiB = 1024 ** 2;

/** Parse a size to bytes; `what` names the option in the error ("--data-size"). */
export function parseSize(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(text);
  const hint = `write it like 512M or 2G (binary units: K, M, G, T)`;
  if (!m || /\d\s*[KMGT]B$/i.test(text.trim()))
    throw new BakeError(`${what}: "${text}" is not a size`, { hint, context: { option: what, text } });
  const bytes = Math.round(Number(m[1]) * (UNITS[(m[2] ?? "").toUpperCase()] as number));
  if (!Number.isSafeInteger(bytes))
    throw new BakeError(`${what}: "${text}" is too large`, { hint, context: { option: what, text } });
  return bytes;
}

/** A size in bytes for people: "1.5 GiB", "64 MiB", "512 B". */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [
    ["TiB", 1024 ** 4],
    ["GiB", 1024 ** 3],
    ["MiB", 1024 ** 2],
    ["KiB", 1024],
  ] as const) {
    if (bytes >= factor) return `${Number((bytes / factor).toFixed(1))} ${unit}`;
  }
  return `${bytes} B`;
}
