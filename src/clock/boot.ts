/**
 * Where a stamp's boot and monotonic time come from. CLOCK_MONOTONIC is read with clock_gettime
 * (not process.hrtime, which under Bun counts from process start), so stamps stay comparable
 * across process restarts within one boot; boot_id tells boots apart.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { FieldrelayError } from "../errors/index.ts";
import { CLOCK_MONOTONIC, clockGettimeNs } from "../hal/libc/index.ts";

/** ClockError is a clock input that cannot be read (boot_id, RTC, sync state). */
export class ClockError extends FieldrelayError {}

export const BOOT_ID_PATH = "proc/sys/kernel/random/boot_id";

/** The kernel's boot_id under `root`, e.g. "8f0c…-…"; throws ClockError when unreadable. */
export function readBootId(root: string): string {
  const path = join(root, BOOT_ID_PATH);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ClockError(`${path}: cannot read the boot id (${(error as NodeJS.ErrnoException).code})`, {
      hint: "is /proc mounted, and does system.root point at the right tree?",
      context: { file: path },
      cause: error,
    });
  }
  const id = text.trim();
  if (!/^[0-9a-f-]{8,64}$/i.test(id))
    throw new ClockError(`${path}: "${id.slice(0, 40)}" is not a boot id`, {
      hint: "expected a UUID such as 3f2a9c1e-…; check system.root",
      context: { file: path },
    });
  return id;
}

/** CLOCK_MONOTONIC in ns: counts from boot, never jumps with the wall clock. */
export function monotonicNs(): bigint {
  return clockGettimeNs(CLOCK_MONOTONIC);
}
