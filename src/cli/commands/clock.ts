/**
 * `fieldrelay clock [--json] [--db PATH]`: the clock model of the current boot as the running
 * service sees it — its anchors (bounded and with error bounds, as the clock message carries
 * them), the crystal's rate measured against the RTC, and the error bound of a stamp taken now.
 * Read-only: it reads the anchors from the queue database (safe while `run` writes it), boot_id
 * and CLOCK_MONOTONIC from this boot, the sync state from clock.sync_source.
 * Exit codes: 0 ok; 66 no queue database; 65 it cannot be read; 78 bad config.
 */
import type { Command } from "commander";
import {
  clockReport,
  monotonicNs,
  readBootId,
  readRtcTrust,
  rtcTrustPath,
  syncSourceFromConfig,
} from "../../clock/index.ts";
import { ExitCode } from "../../errors/index.ts";
import { openQueueReader, QueueError } from "../../queue/index.ts";
import type { Io } from "../io.ts";
import { type ConfigOptions, loadConfigForCommand, withConfig } from "../options.ts";

type Opts = ConfigOptions & { json?: boolean; db?: string };

const iso = (ms: number) => new Date(Math.round(ms)).toISOString();
const fmtMs = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(1)} ms`);

export function clockCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  withConfig(
    program
      .command("clock")
      .description("anchors of this boot, the crystal's measured rate, and the current error bound")
      .option("--json", "print JSON")
      .option("--db <path>", "queue database file (instead of queue.path from the config)"),
  ).action((opts: Opts) => {
    const config = loadConfigForCommand(opts.config, io, setExit);
    if (!config) return;
    const bootId = readBootId(config.system.root);
    let stored: ReturnType<ReturnType<typeof openQueueReader>["anchorsFor"]>;
    try {
      const reader = openQueueReader(opts.db ?? config.queue.path);
      try {
        stored = reader.anchorsFor(bootId);
      } finally {
        reader.close();
      }
    } catch (error) {
      if (!(error instanceof QueueError)) throw error;
      io.err(`fieldrelay: ${error.describe()}`);
      setExit(error.code === "db-missing" ? ExitCode.noInput : ExitCode.dataErr);
      return;
    }
    const sync = syncSourceFromConfig(config.clock.sync_source).read();
    const { trust, problem } = readRtcTrust(rtcTrustPath(opts.db ?? config.queue.path));
    if (problem) io.err(`fieldrelay: RTC trust record ignored: ${problem}`);
    const r = clockReport(bootId, stored, monotonicNs(), Date.now(), sync, trust);
    if (opts.json) {
      io.out(JSON.stringify({ ...r, now: r.nowMs === undefined ? null : iso(r.nowMs) }));
      return;
    }
    io.out(`boot:       ${r.bootId}`);
    io.out(`synced:     ${r.synced ? "yes" : "no"} (${config.clock.sync_source})`);
    io.out(
      `now:        ${r.nowMs === undefined ? "unknown (no ntp or rtc anchor this boot)" : iso(r.nowMs)}${r.boundMs === undefined ? "" : ` ± ${fmtMs(r.boundMs)}`}`,
    );
    io.out(
      `crystal:    ${r.crystal ? `${r.crystal.ratePpm >= 0 ? "+" : ""}${r.crystal.ratePpm.toFixed(2)} ppm against the RTC (± ${r.crystal.ppm.toFixed(2)} ppm)` : "not measured yet (needs two RTC edge reads)"}`,
    );
    const t = r.trust;
    io.out(
      `rtc trust:  ${
        t
          ? `checked ${iso(t.checkedMs)}: offset ${t.offsetMs.toFixed(1)} ± ${fmtMs(t.offsetErrMs)}, rate ${t.ppm === undefined ? "not measured (datasheet)" : `${t.ppm.toFixed(3)} ± ${t.ppmErr?.toFixed(3)} ppm`}; ${t.applied ? "bounds this boot" : "learned this boot"} (${t.rtc})`
          : "none (no NTP check of the RTC kept)"
      }`,
    );
    io.out(`anchors:    ${r.anchors.length} kept of ${r.stored} stored`);
    if (r.anchors.length === 0) return;
    io.out("  mono_s            wall (UTC)                 src  ± error");
    for (const a of r.anchors)
      io.out(
        `  ${(a.mono_ms / 1000).toFixed(3).padStart(16)}  ${iso(a.wall_ms)}  ${a.src.padEnd(3)}  ${fmtMs(a.err_ms)}`,
      );
  });
}
