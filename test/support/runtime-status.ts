/**
 * A RuntimeStatus for tests: a healthy, connected device at monotonic time 1 000 000 ms, with
 * overrides for the parts a test breaks. Also a prepared /sys tree for the Pi vitals.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { ClockStatus } from "../../src/clock/index.ts";
import type { PublisherStats } from "../../src/publish/index.ts";
import type { QueueStats } from "../../src/queue/index.ts";
import type { RuntimeStatus } from "../../src/runtime/status.ts";

export const NOW_MONO_MS = 1_000_000;

export interface StatusOverrides {
  queue?: Partial<QueueStats>;
  publisher?: Partial<PublisherStats>;
  clock?: Partial<ClockStatus>;
  sensors?: RuntimeStatus["sensors"];
  samplerProgressMonoMs?: number;
  dataDir?: string;
  startedMonoMs?: number;
}

export function fakeStatus(o: StatusOverrides = {}): RuntimeStatus {
  return {
    queue: {
      captured: 120,
      committed: 100,
      commits: 10,
      delivered: 110,
      deliveredBeforeCommit: 20,
      evictedByPriority: {},
      refusedByPriority: {},
      rows: 10,
      rowsByPriority: { 5: 10 },
      bytes: 2_000,
      pendingInRam: 0,
      inflight: 2,
      oldestUnsentAgeS: 3,
      refusing: false,
      lastCommitMonoMs: NOW_MONO_MS - 500,
      lastCommitAttemptMonoMs: NOW_MONO_MS - 500,
      lastError: undefined,
      seqNext: 121,
      stateLost: 0,
      deadLetters: 0,
      ...o.queue,
    },
    publisher: {
      connected: true,
      reconnects: 1,
      backoffS: 0,
      inflight: 2,
      published: 115,
      delivered: 110,
      resent: 4,
      lastError: undefined,
      messagesSent: 115,
      readingsSent: 115,
      batchesSplit: 0,
      bytesSent: 23_000,
      refusedTransient: 0,
      refusedPermanent: 0,
      refusingForS: 0,
      lastRefusal: undefined,
      ...o.publisher,
    },
    sensors: o.sensors ?? [
      { name: "sim", driver: "simulated", reads: 120, failures: 0, lastSuccessAgeS: 2, lastError: undefined },
    ],
    clock: {
      source: "ntp",
      quality: "ntp",
      synced: true,
      estimatedErrorMs: 12,
      rtcOffsetMs: -40,
      lastGoodAnchorAgeS: 30,
      rtcPath: "kernel",
      bootId: "5b1e4c2a-0000-4000-8000-000000000001",
      crystalPpm: 41.5,
      anchors: 12,
      ...o.clock,
    },
    samplerProgressMonoMs: o.samplerProgressMonoMs ?? NOW_MONO_MS - 200,
    dataDir: o.dataDir ?? "/var/lib/fieldrelay",
    startedMonoMs: o.startedMonoMs ?? NOW_MONO_MS - 3_600_000,
  };
}

/** A temp directory standing in for system.root, with the Pi's vitals files. */
export class FakeRoot {
  readonly dir = mkdtempSync(join(tmpdir(), "fr-root-"));

  write(rel: string, text: string): this {
    const path = join(this.dir, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    return this;
  }

  /** A Pi: SoC temperature, throttle word and rpi_volt hwmon (as hwmon1, after cpu_thermal). */
  pi({ tempMilliC = 48_312, throttled = "0x0", voltAlarm = "0" } = {}): this {
    return this.write("sys/class/thermal/thermal_zone0/temp", `${tempMilliC}\n`)
      .write("sys/devices/platform/soc/soc:firmware/get_throttled", `${throttled}\n`)
      .write("sys/class/hwmon/hwmon0/name", "cpu_thermal\n")
      .write("sys/class/hwmon/hwmon1/name", "rpi_volt\n")
      .write("sys/class/hwmon/hwmon1/in0_lcrit_alarm", `${voltAlarm}\n`);
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
