/**
 * Bus scanning as i2cdetect does it: 0x30–0x37 and 0x50–0x5F are probed with a read-byte (a
 * quick write can corrupt EEPROMs and lock some chips), every other address with a quick write.
 * Addresses claimed by a kernel driver are not probed and show as "UU".
 */
import { Errno, SyscallError } from "../libc/index.ts";
import type { I2cBus } from "./types.ts";

export type ProbeMode = "quick" | "read";
export type ProbeResult = "found" | "absent" | "busy";

/** A bus that can probe an address itself (the kernel adapter does it with I2C_SMBUS). */
export interface ProbingBus extends I2cBus {
  probe(address: number, mode: ProbeMode): Promise<ProbeResult>;
}

export const SCAN_FIRST = 0x08;
export const SCAN_LAST = 0x77;

export function probeMode(address: number): ProbeMode {
  return (address >= 0x30 && address <= 0x37) || (address >= 0x50 && address <= 0x5f) ? "read" : "quick";
}

/** Probe over plain transfers: quick write = empty write, read-byte = a one-byte read. */
export async function probeWithTransfer(bus: I2cBus, address: number, mode: ProbeMode): Promise<ProbeResult> {
  try {
    await bus.transfer(address, new Uint8Array(0), mode === "read" ? 1 : 0);
    return "found";
  } catch (error) {
    return probeOutcome(error);
  }
}

/** What a failed probe means: EBUSY is a driver's address, a stuck bus is an error, else nothing there. */
export function probeOutcome(error: unknown): ProbeResult {
  if (!(error instanceof SyscallError)) throw error;
  if (error.errno === Errno.EBUSY) return "busy";
  if (error.errno === Errno.ETIMEDOUT) throw error;
  return "absent";
}

/** ScanResult: every address that answered ("found") or is owned by a driver ("busy"). */
export type ScanResult = Map<number, Exclude<ProbeResult, "absent">>;

export async function scanBus(bus: I2cBus, first = SCAN_FIRST, last = SCAN_LAST): Promise<ScanResult> {
  const found: ScanResult = new Map();
  const probing = "probe" in bus && typeof (bus as ProbingBus).probe === "function";
  for (let address = first; address <= last; address++) {
    const mode = probeMode(address);
    const result = probing
      ? await (bus as ProbingBus).probe(address, mode)
      : await probeWithTransfer(bus, address, mode);
    if (result !== "absent") found.set(address, result);
  }
  return found;
}

/** The i2cdetect grid: rows of 16, "--" for silence, the address in hex when found, "UU" when busy. */
export function formatScanGrid(result: ScanResult, first = SCAN_FIRST, last = SCAN_LAST): string {
  const lines = ["     0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f"];
  for (let row = 0; row < 0x80; row += 16) {
    const cells: string[] = [];
    for (let col = 0; col < 16; col++) {
      const address = row + col;
      const state = result.get(address);
      if (address < first || address > last) cells.push("  ");
      else if (state === "busy") cells.push("UU");
      else if (state === "found") cells.push(address.toString(16).padStart(2, "0"));
      else cells.push("--");
    }
    lines.push(`${row.toString(16).padStart(2, "0")}: ${cells.join(" ")}`.trimEnd());
  }
  return lines.join("\n");
}
