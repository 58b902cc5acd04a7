/**
 * Parses the guest's report line (see guest.ts): `FIELDRELAY-BOOT-REPORT <base64>` where the
 * payload is `key=value` lines. The first line that decodes cleanly wins (the guest prints it twice
 * in case a kernel message splits one).
 */
import { REPORT_MARKER } from "./guest.ts";

export type BootReport = Record<string, string>;

/** `complete` is a key the report's last lines carry: a copy without it was cut short. */
export function parseReport(serialLog: string, complete = "stop.Result"): BootReport | undefined {
  for (const line of serialLog.split("\n")) {
    const at = line.indexOf(`${REPORT_MARKER} `);
    if (at < 0) continue;
    const b64 = line.slice(at + REPORT_MARKER.length + 1).trim();
    if (!/^[A-Za-z0-9+/]+=*$/.test(b64) || b64.length % 4 !== 0) continue;
    const text = Buffer.from(b64, "base64").toString("utf8");
    if (!text.includes(`${complete}=`)) continue; // truncated or split: try the next copy
    const report: BootReport = {};
    for (const kv of text.split("\n")) {
      const eq = kv.indexOf("=");
      if (eq > 0) report[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    return report;
  }
  return undefined;
}
