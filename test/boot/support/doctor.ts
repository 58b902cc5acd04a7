/** `fieldrelay doctor --json` as the guest recorded it (base64 in the report's doctor.json). */
import type { BootReport } from "./report.ts";

export interface DoctorCheck {
  id: string;
  status: "ok" | "warn" | "fail";
  message: string;
  fix?: string;
}

export interface DoctorReport {
  checks: DoctorCheck[];
  exit: number;
}

export function doctorFrom(report: BootReport): DoctorReport {
  const raw = Buffer.from(report["doctor.json"] ?? "", "base64").toString("utf8");
  try {
    return JSON.parse(raw) as DoctorReport;
  } catch {
    throw new Error(
      `doctor printed no JSON (exit ${report["doctor.exit"]}): ${raw.slice(0, 500)} stderr: ${report["doctor.stderr"]}`,
    );
  }
}
