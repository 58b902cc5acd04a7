/**
 * `fieldrelay rtc read|set --from-system|status`: the RTC as the runtime sees it (same path
 * choice as the clock, config rtc.mode). Exit codes: 0 ok; 65 (EX_DATAERR) the RTC's time is
 * invalid (OSF); 69 (EX_UNAVAILABLE) no RTC found, or it cannot be set this way; 78 bad config.
 */
import type { Command } from "commander";
import { linuxI2cOpener } from "../../clock/rtc/open-bus.ts";
import { openRtc, type RtcChoice } from "../../clock/rtc/select.ts";
import type { Rtc, RtcReading } from "../../clock/rtc/types.ts";
import { syncSourceFromConfig } from "../../clock/sync.ts";
import { removeRtcTrust, rtcTrustPath } from "../../clock/trust-file.ts";
import type { Config } from "../../config/index.ts";
import { describeError, ExitCode } from "../../errors/index.ts";
import type { Io } from "../io.ts";
import { type ConfigOptions, loadConfigForCommand, withConfig } from "../options.ts";

type Opts = ConfigOptions & { json?: boolean };

const iso = (ms: number | undefined) => (ms === undefined ? "unknown" : new Date(ms).toISOString());

export function rtcCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  const rtc = program.command("rtc").description("read, set or inspect the DS3231 real-time clock");

  /** Load config and open the RTC; on failure print why, set the exit code and return undefined. */
  async function withRtc(
    opts: Opts,
    body: (rtc: Rtc, choice: RtcChoice, config: Config) => Promise<void>,
  ): Promise<void> {
    const config = loadConfigForCommand(opts.config, io, setExit);
    if (!config) return;
    const choice = await openRtc({
      mode: config.rtc.mode,
      root: config.system.root,
      busNumber: config.rtc.bus,
      address: config.rtc.address,
      openBus: linuxI2cOpener(config.system.root),
    });
    if (!choice.rtc) {
      io.err(`fieldrelay: no RTC found: ${choice.reason}`);
      setExit(ExitCode.unavailable);
      return;
    }
    try {
      await body(choice.rtc, choice, config);
    } finally {
      await choice.rtc.close();
    }
  }

  const invalid = (r: RtcReading) => {
    setExit(ExitCode.dataErr);
    return `RTC time is invalid: ${r.problem ?? "unknown reason"}`;
  };

  withConfig(
    rtc.command("read").description("print the RTC's time (UTC)").option("--json", "print JSON"),
  ).action((opts: Opts) =>
    withRtc(opts, async (clock, choice) => {
      const r = await clock.read();
      if (opts.json)
        io.out(
          JSON.stringify({
            time: r.wallMs === undefined ? null : iso(r.wallMs),
            valid: r.valid,
            osf: r.osf,
            path: choice.path,
          }),
        );
      else if (r.valid) io.out(iso(r.wallMs));
      if (!r.valid) {
        const why = invalid(r);
        if (!opts.json) io.err(`fieldrelay: ${why}`);
      }
    }),
  );

  withConfig(
    rtc
      .command("set")
      .description(
        "set the RTC from the system clock (direct I2C path: registers; kernel path: RTC_SET_TIME on /dev/rtcN)",
      )
      .option("--from-system", "take the time from the system clock (required)")
      .option("--force", "set it even if the system clock is not synchronised"),
  ).action((opts: Opts & { fromSystem?: boolean; force?: boolean }) => {
    if (!opts.fromSystem) {
      io.err("fieldrelay: rtc set needs --from-system (the only time source it takes)");
      setExit(ExitCode.usage);
      return;
    }
    return withRtc(opts, async (clock, choice, config) => {
      if (!clock.write) {
        io.err(`fieldrelay: ${clock.description} cannot be set from here`);
        setExit(ExitCode.unavailable);
        return;
      }
      const sync = syncSourceFromConfig(config.clock.sync_source).read();
      if (!sync.synced && !opts.force) {
        io.err(
          `fieldrelay: the system clock is not synchronised (${config.clock.sync_source}); refusing to copy ${iso(Date.now())} to the RTC — wait for NTP or pass --force`,
        );
        setExit(ExitCode.unavailable);
        return;
      }
      try {
        await clock.write(Date.now());
      } catch (error) {
        const hint =
          choice.path === "kernel"
            ? " (the RTC's device node /dev/rtcN must exist and be writable: run as root or with CAP_SYS_TIME)"
            : "";
        io.err(`fieldrelay: cannot set the RTC: ${(error as Error).message}${hint}`);
        setExit(ExitCode.unavailable);
        return;
      }
      // What an earlier boot learned about the RTC's offset no longer holds (clock/trust.ts).
      removeRtcTrust(rtcTrustPath(config.queue.path));
      const r = await clock.read();
      io.out(
        `RTC set to ${iso(r.wallMs)} via ${choice.path} (${clock.description}); OSF ${r.osf ? "still set" : "clear"}`,
      );
    });
  });

  withConfig(
    rtc
      .command("status")
      .description("OSF, drift against the system clock, temperature, and which path")
      .option("--json", "print JSON"),
  ).action((opts: Opts) =>
    withRtc(opts, async (clock, choice) => {
      const r = await clock.read();
      const systemMs = Date.now();
      let agingOffset: number | undefined;
      try {
        agingOffset = await clock.agingOffset?.();
      } catch (error) {
        io.err(`fieldrelay: aging offset unreadable: ${describeError(error)}`);
      }
      const status = {
        path: choice.path,
        device: clock.description,
        reason: choice.reason,
        time: r.wallMs === undefined ? null : iso(r.wallMs),
        valid: r.valid,
        osf: r.osf,
        driftMs: r.valid && r.wallMs !== undefined ? r.wallMs - systemMs : null,
        temperatureC: r.temperatureC ?? null,
        agingOffset: agingOffset ?? null,
        problem: r.problem ?? null,
      };
      if (opts.json) io.out(JSON.stringify(status, null, 2));
      else
        io.out(
          [
            `path:          ${status.path} — ${status.reason}`,
            `time:          ${status.time ?? "unreadable"}${r.valid ? "" : "  (INVALID)"}`,
            `OSF:           ${r.osf ? "SET — the oscillator stopped; time invalid until set" : "clear"}`,
            `drift:         ${status.driftMs === null ? "n/a" : `${status.driftMs} ms (RTC − system clock)`}`,
            `temperature:   ${status.temperatureC === null ? "n/a" : `${status.temperatureC} °C`}`,
            ...(agingOffset === undefined ? [] : [`aging offset:  ${agingOffset}`]),
            ...(r.problem ? [`problem:       ${r.problem}`] : []),
          ].join("\n"),
        );
      if (!r.valid) setExit(ExitCode.dataErr);
    }),
  );
}
