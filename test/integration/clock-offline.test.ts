/**
 * Months offline (issue #13): a board whose crystal runs +50 ppm fast, a DS3231 beside it that
 * runs +2 ppm fast (the register model over the model I2C bus, as the direct-I2C path sees it),
 * NTP at boot, then 30 days without network. Time is injected: "truth" is the real time, the
 * crystal turns it into CLOCK_MONOTONIC and the system clock, the RTC counts its own seconds. The
 * clock's second-edge polling sleeps through the injected sleep, which moves truth forward.
 *
 * On main 137caab (RTC read once at start) this test failed with a 129.3 s error at day 30
 * (+50 ppm × 30 days), see /work/notes/13.md. Two RTC paths: on the direct I2C path fieldrelay
 * itself decides when the RTC is written; on the kernel path the kernel writes it the moment NTP
 * syncs, so the check at the far end must come from the RTC reads before the sync.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createClock } from "../../src/clock/clock.ts";
import { Ds3231Model } from "../../src/clock/rtc/model.ts";
import { openRtc } from "../../src/clock/rtc/select.ts";
import type { Rtc } from "../../src/clock/rtc/types.ts";
import { fileSyncSource } from "../../src/clock/sync.ts";
import type { Stamp } from "../../src/clock/types.ts";
import { ModelBus } from "../../src/hal/i2c/model-bus.ts";
import { silentLogger } from "../../src/log/index.ts";
import { MemoryAnchors } from "../support/memory-anchors.ts";

const T0 = Date.UTC(2026, 9, 1, 8, 0, 0, 250); // true time at boot
const CRYSTAL = 50e-6; // CLOCK_MONOTONIC and the system clock run fast by this
const RTC = 2e-6; // the DS3231 runs fast by this
const DAY = 86_400_000;
const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

/** The simulated board: true elapsed ms since boot drives every clock. */
class Board {
  readonly root = mkdtempSync(join(tmpdir(), "fr-offline-"));
  readonly syncFile = join(this.root, "run/synchronized");
  elapsed = 0;
  /** The system clock's offset from its crystal-driven count (NTP steps it). */
  systemStepMs = 0;
  readonly rtc = new Ds3231Model({ nowMs: () => this.elapsed * (1 + RTC), timeMs: T0, osf: false });

  constructor() {
    roots.push(this.root);
    mkdirSync(join(this.root, "proc/sys/kernel/random"), { recursive: true });
    mkdirSync(join(this.root, "run"), { recursive: true });
    writeFileSync(
      join(this.root, "proc/sys/kernel/random/boot_id"),
      "c10c0000-0000-4000-8000-000000000030\n",
    );
  }

  truth = (elapsed = this.elapsed) => T0 + elapsed;
  monoNs = () => 2_000_000_000n + BigInt(Math.round(this.elapsed * (1 + CRYSTAL) * 1e6));
  /** The true time at a stamp's monotonic instant. */
  truthAt = (monoNs: bigint) => T0 + Number(monoNs - 2_000_000_000n) / 1e6 / (1 + CRYSTAL);
  wallMs = () => T0 + this.elapsed * (1 + CRYSTAL) + this.systemStepMs;

  /** NTP: the system clock steps to the truth and the kernel reports synchronised. */
  ntp(): void {
    this.systemStepMs = this.truth() - (T0 + this.elapsed * (1 + CRYSTAL));
    writeFileSync(this.syncFile, "");
  }

  offline(): void {
    unlinkSync(this.syncFile);
  }
}

describe("Thirty days offline with a +50 ppm crystal and a +2 ppm DS3231", () => {
  it.each([
    ["direct I2C", "i2c"],
    ["kernel RTC class (the kernel sets the RTC the moment NTP syncs)", "kernel"],
  ] as const)(
    "stays within 6 s (RTC-limited) with a true bound, and is corrected to 50 ms when NTP returns: %s",
    async (_, path) => {
      const b = new Board();
      const bus = new ModelBus("/dev/i2c-1", { 104: b.rtc });
      const choice = await openRtc({ mode: "i2c", root: b.root, busNumber: 1, openBus: async () => bus });
      expect(choice.path).toBe("i2c");
      // The kernel path reads the same chip through rtc-ds1307; what differs is who writes it.
      const rtc =
        path === "i2c" ? choice.rtc! : { ...choice.rtc!, path: "kernel" as const, write: undefined };
      const anchors = new MemoryAnchors();
      const clock = createClock({
        root: b.root,
        syncSource: fileSyncSource(b.syncFile),
        anchors,
        rtc,
        log: silentLogger(),
        monoNs: b.monoNs,
        wallMs: b.wallMs,
        scheduler: () => () => {},
        sleep: async (ms) => {
          b.elapsed += ms / (1 + CRYSTAL);
        },
        anchorIntervalS: 600,
        maxDriftMs: 2000,
        tickIntervalMs: 300_000,
      });
      b.ntp();
      await clock.start();
      await clock.tick();
      b.elapsed += 5 * 60_000;
      await clock.tick();
      b.offline();

      const stamps: Stamp[] = [];
      const liveBoundViolations: string[] = [];
      let worstAtDay30 = 0;
      // A tick every 5 minutes (an RTC edge read every 10), a reading every 15, 2 min 17 s after a tick.
      for (let minute = 0; minute < 30 * 24 * 60; minute += 5) {
        const capturing = minute % 15 === 5;
        b.elapsed += capturing ? 137_000 : 300_000;
        if (capturing) {
          const s = clock.now();
          stamps.push(s);
          const err = Math.abs(s.wallMs - b.truthAt(s.monoNs));
          if (b.elapsed >= 29.5 * DAY) worstAtDay30 = Math.max(worstAtDay30, err);
          // Published at once (a broker on the LAN): the bound must hold for every reading.
          const p = clock.publishStamp(s);
          const perr = Math.abs(p.wallMs - b.truthAt(s.monoNs));
          if (!(perr <= p.errMs))
            liveBoundViolations.push(`day ${(b.elapsed / DAY).toFixed(2)}: ${perr} > ${p.errMs}`);
          b.elapsed += 163_000;
        }
        await clock.tick();
      }
      console.log(`worst error in the last half day of 30 offline: ${(worstAtDay30 / 1000).toFixed(3)} s`);
      expect(worstAtDay30).toBeLessThanOrEqual(6000);
      expect(liveBoundViolations).toEqual([]);
      expect(clock.status().estimatedErrorMs).toBeGreaterThan(worstAtDay30);
      expect(clock.status().estimatedErrorMs).toBeLessThan(7000);
      expect(clock.status().crystalPpm).toBeCloseTo(48, 0);

      // NTP returns: everything still queued is corrected through the RTC anchors of the boot.
      b.elapsed += 60_000;
      b.ntp();
      if (path === "kernel") b.rtc.setTime(b.truth());
      await clock.tick();
      b.elapsed += 60_000;
      await clock.tick();
      let worstCorrected = 0;
      let worstAt = 0;
      const violations: string[] = [];
      for (const s of stamps) {
        const p = clock.publishStamp(s);
        expect(p.tq).toBe("corrected");
        const err = Math.abs(p.wallMs - b.truthAt(s.monoNs));
        if (err > worstCorrected) worstAt = (b.truthAt(s.monoNs) - T0) / DAY;
        worstCorrected = Math.max(worstCorrected, err);
        if (!(err <= p.errMs)) violations.push(`${err} > ${p.errMs}`);
      }
      console.log(
        `worst error after NTP returned: ${worstCorrected.toFixed(1)} ms (day ${worstAt.toFixed(2)}) over ${stamps.length} readings`,
      );
      expect(worstCorrected).toBeLessThanOrEqual(50);
      expect(violations).toEqual([]);
    },
    180_000,
  );
});

/**
 * #13 follow-up (item 1): an RTC checked by NTP in one boot, then a boot that never syncs. The
 * DS3231 was set long ago and is 1.2 s ahead, running +2 ppm. Boot 1 is synced for two days
 * (the kernel states ±5 ms); the device is then off for `gapDays` and boots offline. The clock
 * must carry what boot 1 learned (offset, rate, when) on the data partition and bound the
 * offline boot's stamps by it: before, the offline boot assumed the RTC within 1 s, false here.
 */
describe("An RTC checked by NTP in an earlier boot, then a boot that never syncs", () => {
  it.each([
    ["direct I2C, 20 days off: the measured rate carries the offset", "i2c", 20],
    ["direct I2C, 90 days off: the check is old, the datasheet bounds it", "i2c", 90],
    ["kernel RTC class, 20 days off: the offset the kernel keeps, at the datasheet rate", "kernel", 20],
  ] as const)(
    "%s",
    async (_, path, gapDays) => {
      const root = mkdtempSync(join(tmpdir(), "fr-trust-"));
      roots.push(root);
      mkdirSync(join(root, "proc/sys/kernel/random"), { recursive: true });
      mkdirSync(join(root, "var/lib/fieldrelay"), { recursive: true });
      const trustPath = join(root, "var/lib/fieldrelay/rtc-trust.json");
      let elapsed = 0; // true ms since T0, across both boots
      let bootStart = 0;
      let synced = false;
      const rtcModel = new Ds3231Model({ nowMs: () => elapsed * (1 + RTC), timeMs: T0 + 1200, osf: false });
      const bus = new ModelBus("/dev/i2c-1", { 104: rtcModel });
      const choice = await openRtc({ mode: "i2c", root, busNumber: 1, openBus: async () => bus });
      const rtc: Rtc =
        path === "i2c"
          ? choice.rtc!
          : {
              ...choice.rtc!,
              path: "kernel",
              description: "/sys/class/rtc/rtc0 (rtc-ds1307 1-0068)",
              write: undefined,
            };
      const monoNs = () => 2_000_000_000n + BigInt(Math.round((elapsed - bootStart) * (1 + CRYSTAL) * 1e6));
      const truthAt = (mono: bigint) => T0 + bootStart + Number(mono - 2_000_000_000n) / 1e6 / (1 + CRYSTAL);
      const boot = (bootId: string) => {
        bootStart = elapsed;
        writeFileSync(join(root, "proc/sys/kernel/random/boot_id"), `${bootId}\n`);
        const anchors = new MemoryAnchors();
        return createClock({
          root,
          syncSource: { name: "test", read: () => ({ synced, estimatedErrorMs: synced ? 5 : undefined }) },
          anchors,
          rtc,
          log: silentLogger(),
          monoNs,
          // Synced: the truth; offline the system clock starts at 2000-01-01 (no hctosys).
          wallMs: () => (synced ? T0 + elapsed : Date.UTC(2000, 0, 1) + (elapsed - bootStart)),
          scheduler: () => () => {},
          sleep: async (ms) => {
            elapsed += ms / (1 + CRYSTAL);
          },
          anchorIntervalS: 600,
          maxDriftMs: 2000,
          tickIntervalMs: 300_000,
          trustPath,
        });
      };

      // Boot 1: NTP synced for two days, a tick every 5 minutes.
      synced = true;
      const first = boot("c10c0000-0000-4000-8000-0000000000b1");
      await first.start();
      if (path === "kernel") rtcModel.setTime(T0 + elapsed); // the kernel writes the RTC at sync
      for (let m = 0; m < 2 * 24 * 60; m += 5) {
        elapsed += 300_000;
        // The kernel keeps writing it every 11 minutes while synchronised.
        if (path === "kernel" && m % 11 === 0) rtcModel.setTime(T0 + elapsed);
        await first.tick();
      }
      first.stop();
      const saved = existsSync(trustPath) ? readFileSync(trustPath, "utf8").trim() : "none";
      console.log(`trust record after boot 1 (${path}): ${saved}`);

      // Off for gapDays; then a boot that never syncs, one reading every 15 minutes for a day.
      elapsed += gapDays * DAY;
      synced = false;
      const second = boot("c10c0000-0000-4000-8000-0000000000b2");
      await second.start();
      let worst = 0;
      let widest = 0;
      const violations: string[] = [];
      for (let m = 0; m < 24 * 60; m += 5) {
        elapsed += 300_000;
        await second.tick();
        if (m % 15 !== 0) continue;
        const s = second.now();
        expect(s.tq).toBe("rtc");
        const p = second.publishStamp(s);
        const err = Math.abs(p.wallMs - truthAt(s.monoNs));
        worst = Math.max(worst, err);
        widest = Math.max(widest, p.errMs);
        if (!(err <= p.errMs))
          violations.push(`${(err / 1000).toFixed(3)} s > ${(p.errMs / 1000).toFixed(3)} s`);
      }
      console.log(
        `offline boot ${gapDays} days after the check (${path}): worst error ${(worst / 1000).toFixed(3)} s, widest bound ${(widest / 1000).toFixed(3)} s`,
      );
      expect(violations.slice(0, 3)).toEqual([]);
      expect(saved).not.toBe("none");
      // The datasheet alone (3.5 ppm + 1 ppm ageing) allows this much since the check.
      const sheetMs = (gapDays + 1) * DAY * 4.5e-6;
      if (path === "i2c" && gapDays === 20) {
        expect(worst).toBeLessThan(300);
        expect(widest).toBeLessThan(sheetMs / 3);
      } else expect(widest).toBeGreaterThan(sheetMs * 0.9);
    },
    120_000,
  );
});
