/**
 * Time: the RTC (kernel RTC class or direct I2C, chosen as the runtime chooses: rtc.mode), its
 * oscillator-stop flag, its drift against the system clock (meaningful only when that is synced)
 * and its temperature; and the kernel's sync state (adjtimex or clock.sync_source).
 */
import { linuxI2cOpener, openRtc } from "../../clock/index.ts";
import { type CheckResult, type DoctorContext, fail, ok, warn } from "../types.ts";

export async function rtcCheck(ctx: DoctorContext): Promise<CheckResult[]> {
  const cfg = ctx.config?.rtc;
  if (!cfg) return [];
  if (cfg.mode === "none")
    return [ok("rtc", "rtc.mode is none: no RTC is used (offline boots start unsynced)")];
  const choice = await openRtc({
    mode: cfg.mode,
    root: ctx.root,
    busNumber: cfg.bus,
    address: cfg.address,
    openBus: linuxI2cOpener(ctx.root),
  });
  if (!choice.rtc) {
    const fix =
      'fit a DS3231 and add dtoverlay=i2c-rtc,ds3231 to /boot/firmware/config.txt, or set rtc.mode = "none"';
    return [
      cfg.mode === "auto"
        ? warn("rtc", `no RTC found (${choice.reason}): an offline boot has no trustworthy time`, fix)
        : fail("rtc", `rtc.mode is ${cfg.mode} but ${choice.reason}`, fix),
    ];
  }
  try {
    const r = await choice.rtc.read();
    const temp = r.temperatureC === undefined ? "" : `, ${r.temperatureC.toFixed(2)} °C`;
    const where = `${choice.path} path, ${choice.rtc.description}`;
    if (r.osf || !r.valid)
      return [
        fail(
          "rtc",
          `RTC time is invalid (${r.problem ?? "oscillator-stop flag set"}; ${where}): readings will not be anchored to it`,
          "check the coin cell, then fieldrelay rtc set --from-system once NTP has synced",
        ),
      ];
    const results: CheckResult[] = [ok("rtc", `${where}, time valid${temp}`)];
    if (r.wallMs !== undefined) {
      const driftMs = r.wallMs - ctx.now();
      const synced = ctx.syncState().synced;
      const text = `RTC is ${Math.abs(driftMs / 1000).toFixed(1)} s ${driftMs >= 0 ? "ahead of" : "behind"} the system clock`;
      if (!synced) results.push(ok("rtc.drift", `${text} (system clock not synced: not judged)`));
      else if (Math.abs(driftMs) > cfg.max_drift_ms)
        results.push(
          warn(
            "rtc.drift",
            `${text}, more than rtc.max_drift_ms (${cfg.max_drift_ms})`,
            "fieldrelay rtc set --from-system",
          ),
        );
      else results.push(ok("rtc.drift", `${text}, within rtc.max_drift_ms (${cfg.max_drift_ms})`));
    }
    return results;
  } finally {
    await choice.rtc.close();
  }
}

export const timeSyncCheck = (ctx: DoctorContext): CheckResult[] => {
  const s = ctx.syncState();
  const source = ctx.config?.clock.sync_source ?? "adjtimex";
  if (s.synced)
    return [
      ok(
        "time.sync",
        `system clock synchronised (${source}${s.estimatedErrorMs === undefined ? "" : `, ±${s.estimatedErrorMs} ms`})`,
      ),
    ];
  return [
    warn(
      "time.sync",
      `system clock not synchronised (${source}): readings are stamped from the RTC or marked unsynced`,
      "enable systemd-timesyncd or chrony and let the device reach an NTP server",
    ),
  ];
};
