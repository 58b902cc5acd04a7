/**
 * Clock stamps readings and re-stamps them for publishing (rules in anchors.ts, error model in
 * bounds.ts).
 *
 * Anchors are recorded:
 *   - at start(): "rtc" from one plain RTC read (±500 ms; never while OSF is set), else "system"
 *     (the unsynchronised system clock, with SYSTEM_UNCERTAINTY_MS). start() does not wait for a
 *     second edge, so the service is up at once; the first tick captures one.
 *   - "rtc" by second-edge capture (rtc/edge.ts) on the first tick, then every anchorIntervalS of
 *     monotonic time, right after the clock becomes synchronised (so NTP checks the RTC), and
 *     after a stall (ticks more than 3 intervals apart: suspend/resume, a frozen process). These
 *     are what make offline stamps follow the RTC's ±2 ppm instead of the crystal.
 *   - "ntp" on every change to the synced state (a start-up in the synced state counts) and every
 *     anchorIntervalS while synced; when sync is lost, nothing — stamps then follow the anchors.
 *   - "rtc-set" when the clock writes the RTC, and on the kernel path whenever the clock becomes
 *     synchronised (the kernel then writes it): the RTC's offset may jump there.
 * Anchors of the current boot are kept compacted to MAX_ANCHORS_PER_BOOT (bounds.ts): in memory,
 * and in the AnchorStore, which deletes what the clock dropped in the transaction of the next
 * insert. The store is read once per boot.
 *
 * While synced, tick() compares the RTC with the system clock; beyond maxDriftMs it writes the
 * system time to the RTC on the direct I2C path, and on the kernel path logs that the kernel
 * does this itself (every 11 minutes while NTP-synced; `fieldrelay rtc set` can do it at once).
 *
 * now() is synchronous and cheap (one adjtimex or stat per call plus the cached estimate): it
 * notices sync changes at once, so a reading is never stamped with a quality its anchor does not back.
 */

import { describeError } from "../errors/index.ts";
import type { Logger } from "../log/index.ts";
import { bestEstimate, type WireAnchor } from "../wire/index.ts";
import {
  crystalPpmOf,
  NTP_DEFAULT_UNCERTAINTY_MS,
  nearestAnchors,
  nsToMs,
  ntpErrorAt,
  publishStamp,
  SYSTEM_UNCERTAINTY_MS,
} from "./anchors.ts";
import { monotonicNs, readBootId } from "./boot.ts";
import {
  CRYSTAL_PPM,
  compactAnchors,
  crystalRate,
  effectiveAnchors,
  isEdgeAnchor,
  type RtcPrior,
  rtcPpmAt,
} from "./bounds.ts";
import { type RtcSample, readRtcEdge, readRtcPlain } from "./rtc/edge.ts";
import type { Rtc } from "./rtc/types.ts";
import type { ClockStatus } from "./status.ts";
import type { SyncSource, SyncState } from "./sync.ts";
import { learnRtcTrust, type RtcTrust, trustedOffset } from "./trust.ts";
import { readRtcTrust, removeRtcTrust, writeRtcTrust } from "./trust-file.ts";
import type { Anchor, AnchorSource, AnchorStore, PublishStamp, Stamp } from "./types.ts";

/** IntervalScheduler runs fn every intervalMs until the returned function is called; injected by tests. */
export type IntervalScheduler = (fn: () => void, intervalMs: number) => () => void;

export const intervalScheduler: IntervalScheduler = (fn, intervalMs) => {
  const timer = setInterval(fn, intervalMs);
  timer.unref?.();
  return () => clearInterval(timer);
};

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

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
  /** Waits ms (second-edge polling); injected so tests move time instead of sleeping. */
  sleep?: (ms: number) => Promise<void>;
  /** clock.anchor_interval_s: a fresh ntp anchor (while synced) and RTC read this often. */
  anchorIntervalS: number;
  /** rtc.max_drift_ms: RTC − system beyond this (while synced) is corrected. */
  maxDriftMs: number;
  /** How often tick() runs after start(), ms (default 10 s). */
  tickIntervalMs?: number;
  /**
   * The RTC trust record on the data partition (trust-file.ts; rtcTrustPath(queue.path)). Absent:
   * nothing is carried across boots and an unchecked RTC is assumed within RTC_UNVERIFIED_MS.
   */
  trustPath?: string | undefined;
}

/** The trust record is rewritten at most this often while synced (flash wear), and at stop(). */
export const TRUST_SAVE_INTERVAL_MS = 6 * 3_600_000;

export interface Clock {
  readonly bootId: string;
  /** The stamp for a reading captured now. */
  now(): Stamp;
  /** The error bound of a stamp taken now, ms. */
  boundMs(): number;
  /** The time to publish a stamp with (possibly corrected by later anchors), with its bound. */
  publishStamp(stamp: Stamp): PublishStamp;
  /** This boot's anchors as the clock message carries them (bounds.ts), sorted by mono. */
  anchors(): WireAnchor[];
  /** Increases whenever anchors() may have changed. */
  anchorsVersion(): number;
  /** Increases each time the clock becomes synchronised (readings captured before can now be fixed). */
  syncEpoch(): number;
  status(): ClockStatus;
  /** Record the start-up anchor and begin periodic ticks. */
  start(): Promise<void>;
  /** One periodic turn: sync state, periodic anchors, RTC drift. start() schedules it. */
  tick(): Promise<void>;
  stop(): void;
}

export function createClock(o: ClockOptions): Clock {
  const monoNs = o.monoNs ?? monotonicNs;
  const wallMs = o.wallMs ?? Date.now;
  const scheduler = o.scheduler ?? intervalScheduler;
  const sleep = o.sleep ?? realSleep;
  const log = o.log;
  const bootId = readBootId(o.root);
  const rtcPath = o.rtc?.path ?? "none";
  const tickIntervalMs = o.tickIntervalMs ?? 10_000;
  const intervalNs = BigInt(o.anchorIntervalS) * 1_000_000_000n;

  // What an earlier synchronised boot learned about this RTC (trust.ts), used as a prior for this
  // boot's RTC anchors; `learned` is what this boot knows, saved to the same file.
  const trust = loadTrust();
  const prior: RtcPrior | undefined = trust ? (rtcWall) => trustedOffset(trust, rtcWall) : undefined;
  let savedTrust: RtcTrust | undefined;
  let trustSavedNs: bigint | undefined;

  // Raw and effective anchors per boot. Other boots' never change; this boot's are compacted and
  // re-derived as they are recorded.
  const cache = new Map<string, { raw: Anchor[]; effective: WireAnchor[] }>();
  const derive = (boot: string, raw: Anchor[]) => ({
    raw,
    effective: effectiveAnchors(raw, boot === bootId ? prior : undefined),
  });
  // This boot's stored anchors that compaction dropped on load: deleted with the next save.
  let unkept: Anchor[] = [];
  const entry = (boot: string) => {
    let e = cache.get(boot);
    if (!e) {
      const stored = o.anchors.anchorsFor(boot);
      const raw = compactAnchors(stored);
      if (boot === bootId && raw.length < stored.length) {
        const keep = new Set(raw);
        unkept = stored.filter((x) => !keep.has(x));
      }
      e = derive(boot, raw);
      cache.set(boot, e);
    }
    return e;
  };

  function loadTrust(): RtcTrust | undefined {
    if (!o.trustPath || !o.rtc) return undefined;
    const { trust: t, problem } = readRtcTrust(o.trustPath);
    if (problem) log.warn({ path: o.trustPath }, `RTC trust record ignored: ${problem}`);
    if (!t) return undefined;
    const why =
      t.rtc !== o.rtc.description
        ? `it is about ${t.rtc}, not ${o.rtc.description}`
        : t.bootId === bootId
          ? undefined // learned in this boot: its anchors are in the store
          : "";
    if (why) log.info({ path: o.trustPath }, `RTC trust record not used: ${why}`);
    if (why === "") {
      log.info(
        {
          checked: new Date(t.checkedMs).toISOString(),
          offsetMs: t.offsetMs,
          offsetErrMs: t.offsetErrMs,
          ppm: t.ppm,
          ppmErr: t.ppmErr,
        },
        "RTC trust from an earlier boot's NTP check",
      );
      return t;
    }
    return undefined;
  }
  let version = 0;
  let epoch = 0;
  const newest = new Map<AnchorSource, Anchor>();
  for (const a of entry(bootId).raw) {
    const n = newest.get(a.source);
    if (!n || a.monoNs > n.monoNs) newest.set(a.source, a);
  }
  let sync: SyncState | undefined;
  let rtcOffsetMs: number | undefined;
  let stopTicks: (() => void) | undefined;
  let busy = false;
  let kernelDriftLogged = false;
  let rtcDue = true;
  let lastTickNs: bigint | undefined;

  /**
   * A store that cannot save (disk full, read-only) must not stop capture: the anchor is kept in
   * memory and used for this process's lifetime; the failure is logged once until a save works.
   */
  let saveFailing = false;
  function record(a: Omit<Anchor, "bootId">, quiet = false): Anchor {
    const anchor: Anchor = { bootId, ...a };
    const before = entry(bootId).raw;
    const kept = compactAnchors([...before, anchor]);
    // The store deletes what compaction dropped (loaded rows beyond the bound too) in the
    // transaction of this insert; the new anchor itself is always written.
    const keep = new Set(kept);
    const drop = [...unkept, ...before.filter((x) => !keep.has(x))];
    try {
      o.anchors.saveAnchor(anchor, drop);
      unkept = [];
      saveFailing = false;
    } catch (error) {
      if (!saveFailing)
        log.error(
          { err: describeError(error), source: a.source },
          "clock anchor not saved (kept in memory; a restart before the next save loses it)",
        );
      saveFailing = true;
    }
    cache.set(bootId, derive(bootId, kept));
    version++;
    newest.set(a.source, anchor);
    const fields = {
      source: a.source,
      wall: new Date(a.wallMs).toISOString(),
      monoNs: String(a.monoNs),
      uncertaintyMs: a.uncertaintyMs,
    };
    if (quiet) log.debug(fields, `clock anchored to ${a.source}`);
    else log.info(fields, `clock anchored to ${a.source}`);
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
      const stale = last === undefined || mono - last.monoNs >= intervalNs;
      if (becameSynced || stale)
        record(
          {
            source: "ntp",
            monoNs: mono,
            wallMs: wallMs(),
            uncertaintyMs: next.estimatedErrorMs ?? NTP_DEFAULT_UNCERTAINTY_MS,
          },
          !becameSynced,
        );
      // NTP checks the RTC as soon as it can: that bounds the RTC's offset for this boot.
      if (becameSynced) {
        rtcDue = true;
        epoch++;
        // On the kernel path the kernel copies the system time to the RTC as soon as NTP syncs
        // (and every 11 minutes after): its offset may jump here, so no bound is carried across.
        if (o.rtc?.path === "kernel") {
          record({ source: "rtc-set", monoNs: mono, wallMs: wallMs(), uncertaintyMs: 0 }, true);
          forgetTrust("the kernel sets the RTC when NTP syncs");
        }
      }
    }
    return next;
  }

  function now(): Stamp {
    const mono = monoNs();
    if (refresh(mono).synced) return { bootId, monoNs: mono, wallMs: wallMs(), tq: "ntp" };
    const { raw, effective } = entry(bootId);
    // The system clock may say 2000-01-01 after an offline boot: follow the anchors instead.
    if (raw.some((a) => a.source === "rtc")) {
      const e = bestEstimate(nsToMs(mono), nearestAnchors(effective, nsToMs(mono)));
      if (e) return { bootId, monoNs: mono, wallMs: e.wallMs, tq: "rtc" };
    }
    return { bootId, monoNs: mono, wallMs: wallMs(), tq: "unsynced" };
  }

  function boundMs(): number {
    const mono = monoNs();
    if (refresh(mono).synced) {
      const e = entry(bootId);
      return ntpErrorAt(mono, e.raw, crystalPpmOf(e.effective));
    }
    const m = nsToMs(mono);
    return bestEstimate(m, nearestAnchors(entry(bootId).effective, m))?.errMs ?? SYSTEM_UNCERTAINTY_MS;
  }

  const edgeIo = (rtc: Rtc) => ({
    read: () => rtc.read(),
    monoMs: () => nsToMs(monoNs()),
    sleep,
  });

  async function sampleRtc(edge: boolean): Promise<RtcSample | undefined> {
    if (!o.rtc) return undefined;
    try {
      return await (edge ? readRtcEdge : readRtcPlain)(edgeIo(o.rtc));
    } catch (error) {
      log.warn({ err: error, rtc: o.rtc.description }, "RTC read failed");
      return undefined;
    }
  }

  const msToNs = (ms: number) => BigInt(Math.round(ms * 1e6));

  function recordRtc(s: RtcSample, quiet: boolean): void {
    if (!s.reading.valid || s.wallMs === undefined) return;
    record(
      {
        source: "rtc",
        monoNs: msToNs(s.monoMs),
        wallMs: s.wallMs,
        uncertaintyMs: s.uncertaintyMs,
        ppm: rtcPpmAt(s.reading.temperatureC),
      },
      quiet,
    );
  }

  /** While synced: RTC − system; set the RTC when it drifted beyond maxDriftMs. */
  async function checkDrift(s: RtcSample): Promise<void> {
    if (!o.rtc || !sync?.synced) return;
    const wall = wallMs() - (nsToMs(monoNs()) - s.monoMs);
    rtcOffsetMs = s.wallMs === undefined ? undefined : Math.round(s.wallMs - wall);
    const drifted = !s.reading.valid || rtcOffsetMs === undefined || Math.abs(rtcOffsetMs) > o.maxDriftMs;
    if (!drifted) {
      kernelDriftLogged = false;
      return;
    }
    const why = s.reading.valid
      ? `RTC is ${rtcOffsetMs} ms off the synchronised system clock`
      : s.reading.problem;
    if (o.rtc.write && o.rtc.path === "i2c") {
      try {
        const value = wallMs();
        await o.rtc.write(value);
        record({ source: "rtc-set", monoNs: monoNs(), wallMs: value, uncertaintyMs: 0 }, true);
        forgetTrust("the RTC was set");
        log.warn(
          { rtcOffsetMs, osf: s.reading.osf, rtc: o.rtc.description },
          `${why}; RTC set from the system clock`,
        );
        rtcOffsetMs = 0;
        rtcDue = true;
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
    const mono = monoNs();
    // A stall (suspend, a frozen process): the crystal ran unobserved; check the RTC again.
    if (lastTickNs !== undefined && mono - lastTickNs > BigInt(3 * tickIntervalMs) * 1_000_000n)
      rtcDue = true;
    lastTickNs = mono;
    refresh(mono);
    if (!o.rtc || busy) return;
    const lastRtc = newest.get("rtc");
    const due = rtcDue || lastRtc === undefined || mono - lastRtc.monoNs >= intervalNs;
    // While synced the RTC is read for the drift check on every tick; an anchor is kept when due.
    if (!due && !sync?.synced) return;
    // An RTC read can be slow (I2C, edge polling); never stack them behind each other.
    busy = true;
    try {
      const s = await sampleRtc(due);
      if (!s) return;
      // Without an edge (the second never ticked in time) the plain read still counts, ±500 ms.
      if (due) {
        rtcDue = false;
        recordRtc(s, true);
      }
      if (!s.reading.valid && s.reading.osf) forgetTrust("the RTC's oscillator stopped (OSF)");
      await checkDrift(s);
      if (due && sync?.synced) saveTrust(false);
    } finally {
      busy = false;
    }
  }

  async function start(): Promise<void> {
    const s = await sampleRtc(false);
    if (s?.reading.valid && s.wallMs !== undefined) {
      rtcOffsetMs = Math.round(s.wallMs - wallMs());
      recordRtc(s, false);
    } else {
      if (s)
        log.warn(
          { rtc: o.rtc?.description, osf: s.reading.osf },
          `RTC not used as an anchor: ${s.reading.problem}`,
        );
      record({ source: "system", monoNs: monoNs(), wallMs: wallMs(), uncertaintyMs: SYSTEM_UNCERTAINTY_MS });
    }
    refresh(monoNs());
    stopTicks = scheduler(() => void tick(), tickIntervalMs);
  }

  /**
   * Write what this boot learned about the RTC (trust.ts) when it is new: at once the first time,
   * then at most every TRUST_SAVE_INTERVAL_MS, and at stop() whatever is newer than the file.
   */
  function saveTrust(atStop: boolean): void {
    if (!o.trustPath || !o.rtc) return;
    const learned = learnRtcTrust(entry(bootId).raw, {
      rtc: o.rtc.description,
      bootId,
      path: o.rtc.path,
      previous: savedTrust ?? trust,
    });
    if (!learned || learned.checkedMs === savedTrust?.checkedMs) return;
    const mono = monoNs();
    const due =
      atStop ||
      trustSavedNs === undefined ||
      mono - trustSavedNs >= BigInt(TRUST_SAVE_INTERVAL_MS) * 1_000_000n;
    if (!due) return;
    try {
      writeRtcTrust(o.trustPath, learned);
      savedTrust = learned;
      trustSavedNs = mono;
      log.debug({ path: o.trustPath, offsetMs: learned.offsetMs, ppm: learned.ppm }, "RTC trust saved");
    } catch (error) {
      log.warn({ err: describeError(error), path: o.trustPath }, "RTC trust record not saved");
    }
  }

  /** The RTC was (or is about to be) written: the record's offset no longer holds. */
  function forgetTrust(why: string): void {
    if (!o.trustPath) return;
    try {
      removeRtcTrust(o.trustPath);
      if (savedTrust) log.info({ path: o.trustPath }, `RTC trust record removed: ${why}`);
    } catch (error) {
      log.warn({ err: describeError(error), path: o.trustPath }, "RTC trust record not removed");
    }
    savedTrust = undefined;
    trustSavedNs = undefined;
  }

  function status(): ClockStatus {
    const mono = monoNs();
    const [ntp, rtc] = [newest.get("ntp"), newest.get("rtc")];
    const lastGood = ntp && rtc ? (ntp.monoNs > rtc.monoNs ? ntp : rtc) : (ntp ?? rtc);
    const tq = now().tq;
    const raw = entry(bootId).raw;
    const rate = crystalRate(
      raw.filter(isEdgeAnchor),
      raw.filter((a) => a.source === "rtc-set").map((a) => a.monoNs),
    );
    const bound = boundMs();
    return {
      source: (["ntp", "rtc", "system"] as const).find((x) => newest.has(x)) ?? "none",
      quality: tq,
      synced: sync?.synced ?? false,
      estimatedErrorMs: bound >= SYSTEM_UNCERTAINTY_MS ? undefined : bound,
      rtcOffsetMs,
      lastGoodAnchorAgeS: lastGood ? Number(mono - lastGood.monoNs) / 1e9 : undefined,
      rtcPath,
      bootId,
      crystalPpm: rate.ppm < CRYSTAL_PPM ? rate.ratePpm : undefined,
      anchors: raw.length,
    };
  }

  return {
    bootId,
    now,
    boundMs,
    publishStamp: (stamp) => {
      const e = entry(stamp.bootId);
      return publishStamp(stamp, e.raw, bootId, e.effective);
    },
    anchors: () => entry(bootId).effective,
    anchorsVersion: () => version,
    syncEpoch: () => epoch,
    status,
    start,
    tick,
    stop() {
      stopTicks?.();
      stopTicks = undefined;
      saveTrust(true);
    },
  };
}
