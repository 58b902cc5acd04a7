/**
 * The systemd watchdog, fed only while fieldrelay is actually capturing. systemd restarts the
 * service when WATCHDOG=1 stops arriving for WatchdogSec; a timer that fed it unconditionally
 * would keep a wedged process alive. WatchdogGate decides, from the status snapshot, whether both
 * halves of capture made progress within the window:
 *
 *   sampler  samplerProgressMonoMs is within the window.
 *   writer   it had nothing to do (no readings waiting in RAM), or it drained something
 *            (committed + deliveredBeforeCommit grew — readings acked before their deadline are
 *            never written, which is progress too), or it committed, within the window.
 *
 * The gate keeps the little memory the second rule needs (last drain count and when it moved);
 * it does no I/O and reads no clock: time comes in with each call, so tests drive it directly.
 */
import type { Logger } from "../log/index.ts";
import type { Notifier } from "./notify.ts";
import type { SystemStatus } from "./status.ts";

export interface GateDecision {
  feed: boolean;
  /** Why not, when feed is false. */
  reason: string | undefined;
}

export class WatchdogGate {
  private drained: number | undefined;
  private writerProgressMonoMs: number | undefined;

  /** windowMs must exceed commit_interval_ms and the sampler's longest quiet turn. */
  constructor(readonly windowMs: number) {}

  decide(status: SystemStatus, nowMonoMs: number): GateDecision {
    const q = status.queue;
    const drained = q.committed + q.deliveredBeforeCommit;
    let writer = Math.max(this.writerProgressMonoMs ?? status.startedMonoMs, q.lastCommitMonoMs ?? -Infinity);
    // A full disk is not a hang: the writer retries every second and a restart would not make
    // room (it would only drop what RAM holds). Neither is a failing card (EIO, read-only after an
    // error): a restart cannot open the queue on it and would loop, while running on the service
    // still delivers what RAM holds and takes readings on the broker's acks. Health reports both;
    // systemd need not restart us.
    const storage = q.lastError?.startsWith("SQLITE_FULL") || q.storageFault !== undefined;
    if (storage && q.lastCommitAttemptMonoMs !== undefined)
      writer = Math.max(writer, q.lastCommitAttemptMonoMs);
    if (q.pendingInRam === 0 || (this.drained !== undefined && drained !== this.drained)) writer = nowMonoMs;
    this.drained = drained;
    this.writerProgressMonoMs = writer;

    const samplerAge = nowMonoMs - status.samplerProgressMonoMs;
    if (samplerAge > this.windowMs)
      return { feed: false, reason: `sampler loop made no progress for ${Math.round(samplerAge)} ms` };
    const writerAge = nowMonoMs - writer;
    if (writerAge > this.windowMs)
      return {
        feed: false,
        reason: `database writer made no progress for ${Math.round(writerAge)} ms with ${q.pendingInRam} readings waiting${q.lastError ? ` (${q.lastError})` : ""}`,
      };
    return { feed: true, reason: undefined };
  }
}

export interface WatchdogOptions {
  notifier: Notifier;
  status: () => SystemStatus;
  nowMonoMs: () => number;
  windowMs: number;
  log: Logger;
}

/**
 * startWatchdog feeds systemd every watchdogIntervalMs while the gate allows; returns a stop
 * function. Does nothing when systemd asked for no watchdog.
 */
export function startWatchdog({ notifier, status, nowMonoMs, windowMs, log }: WatchdogOptions): () => void {
  const interval = notifier.watchdogIntervalMs;
  if (interval === undefined) return () => {};
  const gate = new WatchdogGate(windowMs);
  let starving = false;
  const tick = () => {
    const d = gate.decide(status(), nowMonoMs());
    if (d.feed) {
      if (starving) log.info("capture progresses again; feeding the systemd watchdog");
      starving = false;
      notifier.watchdog();
    } else if (!starving) {
      starving = true;
      log.error(
        { reason: d.reason },
        "capture stalled: no longer feeding the systemd watchdog, expect a restart",
      );
      notifier.status(`stalled: ${d.reason}`);
    }
  };
  tick();
  const timer = setInterval(tick, interval);
  return () => clearInterval(timer);
}
