/**
 * Clock stamps readings and re-stamps them for publishing (rules in anchors.ts).
 *
 * Anchors are recorded:
 *   - at start(): "rtc" from a valid RTC (never while OSF is set), else "system" (the
 *     unsynchronised system clock, with SYSTEM_UNCERTAINTY_MS);
 *   - on every change of sync state: "ntp" when the clock becomes synchronised (a start-up
 *     in the synced state counts as a change), and — when sync is lost — nothing: readings then
 *     fall back to the best anchor this boot has;
 *   - every anchorIntervalS of monotonic time while synced ("ntp").
 * While synced, tick() compares the RTC with the system clock; beyond maxDriftMs it writes the
 * system time to the RTC on the direct I2C path, and on the kernel path logs that the kernel
 * does this itself (every 11 minutes while NTP-synced).
 *
 * now() is synchronous and cheap (one adjtimex or stat per call): it notices sync changes at
 * once, so a reading is never stamped with a quality its anchor does not back.
 */

import { describeError } from "../errors/index.ts";
import type { Logger } from "../log/index.ts";
import { bestAnchor, bestPerSource, publishStamp, SYSTEM_UNCERTAINTY_MS, wallFromAnchor } from "./anchors.ts";
import { monotonicNs, readBootId } from "./boot.ts";
import type { Rtc, RtcReading } from "./rtc/types.ts";
import type { ClockStatus } from "./status.ts";
import type { SyncSource, SyncState } from "./sync.ts";
import type { Anchor, AnchorSource, AnchorStore, PublishStamp, Stamp } from "./types.ts";

/** The uncertainty of an RTC anchor: the chip counts whole seconds. */
export const RTC_UNCERTAINTY_MS = 1000;
/** An ntp anchor when the source gives no estimate. */
export const NTP_DEFAULT_UNCERTAINTY_MS = 100;

/** IntervalScheduler runs fn every intervalMs until the returned function is called; injected by tests. */
export type IntervalScheduler = (fn: () => void, intervalMs: number) => () => void;

export const intervalScheduler: IntervalScheduler = (fn, intervalMs) => {
  const timer = setInterval(fn, intervalMs);
  timer.unref?.();
  return () => clearInterval(timer);
};

export interface ClockOptions {
  /** system.root: where proc/sys/kernel/random/boot_id is found. */
  root: string;
  syncSource: SyncSource;
  anchors: AnchorStore;
  rtc?: Rtc | undefined;
  log: Logger;
  monoNs?: () => bigint;
  wallMs?: () => number;
  scheduler?: IntervalScheduler;
  /** clock.anchor_interval_s: a fresh ntp anchor this often while synced. */
  anchorIntervalS: number;
  /** rtc.max_drift_ms: RTC − system beyond this (while synced) is corrected. */
  maxDriftMs: number;
  /** How often tick() runs after start(), ms (default 10 s). */
  tickIntervalMs?: number;
}

export interface Clock {
  readonly bootId: string;
  /** The stamp for a reading captured now. */
  now(): Stamp;
  /** The time to publish a stamp with (possibly corrected by a later, better anchor). */
  publishStamp(stamp: Stamp): PublishStamp;
  status(): ClockStatus;
  /** Record the start-up anchor and begin periodic ticks. */
  start(): Promise<void>;
  /** One periodic turn: sync state, periodic anchor, RTC drift. start() schedules it. */
  tick(): Promise<void>;
  stop(): void;
}

export function createClock(o: ClockOptions): Clock {
  const monoNs = o.monoNs ?? monotonicNs;
  const wallMs = o.wallMs ?? Date.now;
  const scheduler = o.scheduler ?? intervalScheduler;
  const log = o.log;
  const bootId = readBootId(o.root);
  const rtcPath = o.rtc?.path ?? "none";
  // Per boot, only the best anchor of each source matters (bestPerSource). Other boots' anchors
  // never change; this boot's are folded in as they are recorded.
  const cache = new Map<string, Anchor[]>();
  const anchorsFor = (boot: string): Anchor[] => {
    let list = cache.get(boot);
    if (!list) {
      list = bestPerSource(o.anchors.anchorsFor(boot));
      cache.set(boot, list);
    }
    return list;
  };
  // The newest anchor of each source this boot: for the periodic ntp anchor and status().
  const newest = new Map<AnchorSource, Anchor>();
  for (const a of o.anchors.anchorsFor(bootId)) {
    const n = newest.get(a.source);
    if (!n || a.monoNs > n.monoNs) newest.set(a.source, a);
  }
  let sync: SyncState | undefined;
  let rtcOffsetMs: number | undefined;
  let stopTicks: (() => void) | undefined;
  let checkingDrift = false;
  let kernelDriftLogged = false;

  function record(source: AnchorSource, mono: bigint, wall: number, uncertaintyMs: number): Anchor {
    const anchor: Anchor = { bootId, monoNs: mono, wallMs: wall, source, uncertaintyMs };
    o.anchors.saveAnchor(anchor);
    cache.set(bootId, bestPerSource([...anchorsFor(bootId), anchor]));
    newest.set(source, anchor);
    log.info(
      { source, wall: new Date(wall).toISOString(), monoNs: String(mono), uncertaintyMs },
      `clock anchored to ${source}`,
    );
    return anchor;
  }

  /**
   * A sync source that cannot be asked (adjtimex refused by a seccomp filter, say) must not stop
   * capture: the answer is "not known to be synced", so readings keep their rtc/unsynced quality
   * and are corrected later. The failure is logged once, and again only when it changes.
   */
  let syncFailure: string | undefined;
  function readSync(): SyncState {
    try {
      const state = o.syncSource.read();
      if (syncFailure !== undefined)
        log.info({ source: o.syncSource.name }, "clock sync source readable again");
      syncFailure = undefined;
      return state;
    } catch (error) {
      const message = describeError(error);
      if (message !== syncFailure)
        log.warn(
          {
            source: o.syncSource.name,
            error: message,
            hint: 'readings are stamped as not NTP-synced; allow adjtimex (SystemCallFilter) or set clock.sync_source = "file:/run/systemd/timesync/synchronized"',
          },
          "clock sync state unknown: the sync source cannot be read",
        );
      syncFailure = message;
      return { synced: false, estimatedErrorMs: undefined };
    }
  }

  /** Read the sync state; record an ntp anchor when it becomes synced or the last one is stale. */
  function refresh(mono: bigint): SyncState {
    const next = readSync();
    const becameSynced = next.synced && !sync?.synced;
    if (sync === undefined || next.synced !== sync.synced)
      log.info(
        { synced: next.synced, source: o.syncSource.name },
        next.synced ? "clock synchronised" : "clock not synchronised",
      );
    sync = next;
    if (next.synced) {
      const last = newest.get("ntp");
      const stale = last === undefined || mono - last.monoNs >= BigInt(o.anchorIntervalS) * 1_000_000_000n;
      if (becameSynced || stale)
        record("ntp", mono, wallMs(), next.estimatedErrorMs ?? NTP_DEFAULT_UNCERTAINTY_MS);
    }
    return next;
  }

  function now(): Stamp {
    const mono = monoNs();
    if (refresh(mono).synced) return { bootId, monoNs: mono, wallMs: wallMs(), tq: "ntp" };
    const rtcAnchor = anchorsFor(bootId).find((a) => a.source === "rtc");
    // The system clock may say 2000-01-01 after an offline boot: derive from the RTC anchor instead.
    if (rtcAnchor) return { bootId, monoNs: mono, wallMs: wallFromAnchor(rtcAnchor, mono), tq: "rtc" };
    return { bootId, monoNs: mono, wallMs: wallMs(), tq: "unsynced" };
  }

  async function readRtc(): Promise<RtcReading | undefined> {
    if (!o.rtc) return undefined;
    try {
      return await o.rtc.read();
    } catch (error) {
      log.warn({ err: error, rtc: o.rtc.description }, "RTC read failed");
      return undefined;
    }
  }

  async function checkDrift(): Promise<void> {
    if (!o.rtc || !sync?.synced) return;
    const reading = await readRtc();
    if (!reading) return;
    const wall = wallMs();
    rtcOffsetMs = reading.wallMs === undefined ? undefined : reading.wallMs - wall;
    const drifted = !reading.valid || rtcOffsetMs === undefined || Math.abs(rtcOffsetMs) > o.maxDriftMs;
    if (!drifted) {
      kernelDriftLogged = false;
      return;
    }
    const why = reading.valid
      ? `RTC is ${rtcOffsetMs} ms off the synchronised system clock`
      : reading.problem;
    if (o.rtc.write) {
      try {
        await o.rtc.write(wallMs());
        log.warn(
          { rtcOffsetMs, osf: reading.osf, rtc: o.rtc.description },
          `${why}; RTC set from the system clock`,
        );
        rtcOffsetMs = 0;
      } catch (error) {
        log.error({ err: error, rtc: o.rtc.description }, `${why}; setting the RTC failed`);
      }
    } else if (!kernelDriftLogged) {
      // Said once per excursion: the kernel corrects it on its own schedule, ticks come every 10 s.
      kernelDriftLogged = true;
      log.info(
        { rtcOffsetMs, rtc: o.rtc.description },
        `${why}; the kernel sets the RTC itself every 11 minutes while NTP-synchronised`,
      );
    }
  }

  async function tick(): Promise<void> {
    refresh(monoNs());
    // An RTC read can be slow (I2C); never stack drift checks behind each other.
    if (checkingDrift) return;
    checkingDrift = true;
    try {
      await checkDrift();
    } finally {
      checkingDrift = false;
    }
  }

  async function start(): Promise<void> {
    const reading = await readRtc();
    // Taken after the (possibly slow, I2C) read so the anchor pairs the RTC's value with its moment.
    const mono = monoNs();
    if (reading?.valid && reading.wallMs !== undefined) {
      rtcOffsetMs = reading.wallMs - wallMs();
      record("rtc", mono, reading.wallMs, RTC_UNCERTAINTY_MS);
    } else {
      if (reading)
        log.warn(
          { rtc: o.rtc?.description, osf: reading.osf },
          `RTC not used as an anchor: ${reading.problem}`,
        );
      record("system", mono, wallMs(), SYSTEM_UNCERTAINTY_MS);
    }
    await tick();
    stopTicks = scheduler(() => void tick(), o.tickIntervalMs ?? 10_000);
  }

  function status(): ClockStatus {
    const mono = monoNs();
    const best = bestAnchor(anchorsFor(bootId));
    const [ntp, rtc] = [newest.get("ntp"), newest.get("rtc")];
    const lastGood = ntp && rtc ? (ntp.monoNs > rtc.monoNs ? ntp : rtc) : (ntp ?? rtc);
    const tq = now().tq;
    return {
      source: best?.source ?? "none",
      quality: tq,
      synced: sync?.synced ?? false,
      estimatedErrorMs: sync?.synced ? sync.estimatedErrorMs : tq === "rtc" ? RTC_UNCERTAINTY_MS : undefined,
      rtcOffsetMs,
      lastGoodAnchorAgeS: lastGood ? Number(mono - lastGood.monoNs) / 1e9 : undefined,
      rtcPath,
      bootId,
    };
  }

  return {
    bootId,
    now,
    publishStamp: (stamp) => publishStamp(stamp, anchorsFor(stamp.bootId), bootId),
    status,
    start,
    tick,
    stop() {
      stopTicks?.();
      stopTicks = undefined;
    },
  };
}
