/**
 * runDoctor runs every check in order (cheap, local ones first; the network last) and turns the
 * results into an exit code: 0 all ok, 1 warnings, 2 failures. A check that throws is reported as
 * a failure of that check, never as a crash of the command.
 */

import { rtcCheck, timeSyncCheck } from "./checks/clock.ts";
import { configCheck } from "./checks/config.ts";
import { gpioCheck, i2cCheck, oneWireCheck } from "./checks/hardware.ts";
import { kernelCheck } from "./checks/kernel.ts";
import { brokerCheck, portsCheck, queueCheck, queueLockCheck, unitCheck } from "./checks/service.ts";
import { storageCheck } from "./checks/storage.ts";
import { type Check, type CheckResult, type DoctorContext, fail, type Status } from "./types.ts";

export const CHECKS: ReadonlyArray<[string, Check]> = [
  ["kernel", kernelCheck],
  ["config", configCheck],
  ["storage", storageCheck],
  ["queue", queueCheck],
  ["queue.lock", queueLockCheck],
  ["i2c", i2cCheck],
  ["rtc", rtcCheck],
  ["gpio", gpioCheck],
  ["onewire", oneWireCheck],
  ["time", timeSyncCheck],
  ["systemd", unitCheck],
  ["mqtt", brokerCheck],
  ["ports", portsCheck],
];

export interface DoctorResult {
  checks: CheckResult[];
  exit: 0 | 1 | 2;
}

export function exitFor(results: CheckResult[]): 0 | 1 | 2 {
  if (results.some((r) => r.status === "fail")) return 2;
  if (results.some((r) => r.status === "warn")) return 1;
  return 0;
}

export async function runDoctor(ctx: DoctorContext, checks = CHECKS): Promise<DoctorResult> {
  const results: CheckResult[] = [];
  for (const [name, check] of checks) {
    try {
      results.push(...(await check(ctx)));
    } catch (error) {
      results.push(
        fail(
          name,
          `the ${name} check itself failed: ${(error as Error).message}`,
          "report this as a fieldrelay bug",
        ),
      );
    }
  }
  return { checks: results, exit: exitFor(results) };
}

const LABEL: Record<Status, string> = { ok: "ok  ", warn: "WARN", fail: "FAIL" };

/** One line per result: status, id, message and, unless ok, "— fix: …". */
export function formatLine(r: CheckResult): string {
  return `${LABEL[r.status]}  ${r.id.padEnd(20)} ${r.message}${r.fix ? ` — fix: ${r.fix}` : ""}`;
}

export function formatSummary(result: DoctorResult): string {
  const n = (s: Status) => result.checks.filter((r) => r.status === s).length;
  return `doctor: ${n("ok")} ok, ${n("warn")} warnings, ${n("fail")} failures (exit ${result.exit})`;
}
