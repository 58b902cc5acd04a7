/**
 * The RTC trust record on the data partition (trust.ts says what it holds), next to the queue:
 * `<dir of queue.path>/rtc-trust.json`. Written whole through tmp + fsync + rename + fsync of the
 * directory, so a power cut leaves the old record or the new one, never a torn one. The clock
 * writes it rarely (clock.ts: the first check of a boot, then at most every TRUST_SAVE_INTERVAL_MS,
 * and at stop), and removes it whenever the RTC is written (its offset then means nothing).
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseRtcTrust, type RtcTrust } from "./trust.ts";

export const RTC_TRUST_FILE = "rtc-trust.json";

/** Where the record of a queue at `queuePath` lives. */
export const rtcTrustPath = (queuePath: string) => join(dirname(queuePath), RTC_TRUST_FILE);

/** The record at `path`, or undefined when absent or not a record (a reason for the log). */
export function readRtcTrust(path: string): { trust?: RtcTrust; problem?: string } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? {} : { problem: `${path}: cannot read (${code})` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { problem: `${path}: not JSON` };
  }
  const trust = parseRtcTrust(parsed);
  return trust ? { trust } : { problem: `${path}: not an RTC trust record (version 1)` };
}

function fsyncPath(path: string, flags: string): void {
  const fd = openSync(path, flags);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Replace the record atomically; throws on an I/O error. */
export function writeRtcTrust(path: string, trust: RtcTrust): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w", 0o644);
  try {
    writeSync(fd, `${JSON.stringify(trust)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncPath(dirname(path), "r");
}

/** Remove the record (the RTC was written); absent is fine; throws on other I/O errors. */
export function removeRtcTrust(path: string): void {
  rmSync(path, { force: true });
}
