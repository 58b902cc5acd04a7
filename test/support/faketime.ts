/**
 * OfflineClock: the wall clock of one spawned fieldrelay, driven by libfaketime, for a device that
 * boots offline at 2000-01-01 and is later synchronised by "NTP". It owns two files in a test's
 * directory: the libfaketime offset (re-read on every call, FAKETIME_NO_CACHE) and the
 * `clock.sync_source` file whose existence means "synchronised". CLOCK_MONOTONIC is left real
 * (FAKETIME_DONT_FAKE_MONOTONIC), as on a device. It does not start anything: pass `env` to spawn()
 * and spread `config` into the device's config.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { FAKETIME } from "./tools.ts";

export const Y2000_MS = Date.UTC(2000, 0, 1);

export class OfflineClock {
  readonly offsetFile: string;
  readonly syncFile: string;

  constructor(dir: string) {
    this.offsetFile = join(dir, "faketime");
    this.syncFile = join(dir, "synchronized");
    // Seconds rounded down, so the faked clock starts at or after 2000-01-01T00:00:00Z, never in 1999.
    writeFileSync(this.offsetFile, `-${Math.floor((Date.now() - Y2000_MS) / 1000)}\n`);
  }

  /** The environment that puts a child process on this clock. */
  get env(): Record<string, string> {
    return {
      LD_PRELOAD: FAKETIME.cmd,
      FAKETIME_TIMESTAMP_FILE: this.offsetFile,
      FAKETIME_NO_CACHE: "1",
      FAKETIME_DONT_FAKE_MONOTONIC: "1",
    };
  }

  /** Config sections for it: no RTC, synchronised when the sync file exists. */
  get config(): { rtc: { mode: "none" }; clock: { sync_source: string } } {
    return { rtc: { mode: "none" }, clock: { sync_source: `file:${this.syncFile}` } };
  }

  /** NTP arrives, in timesyncd's order: the clock is stepped to the real time, then sync is reported. */
  sync(): void {
    writeFileSync(this.offsetFile, "+0\n");
    writeFileSync(this.syncFile, "");
  }
}
