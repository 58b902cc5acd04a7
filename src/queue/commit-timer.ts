/**
 * CommitTimer: when the write-behind buffer's next commit runs — the one timer behind
 * batching.ts's pure decision. While commits fail it retries once a second at most.
 *
 *   IDLE ─ schedule(), work pending ─► now: commit at once (commits succeeding)
 *                                    └ later: ARMED(due)
 *   ARMED(due) ─ schedule() with an earlier due ─► ARMED(earlier)   (a later due keeps it)
 *              ├ nothing pending any more ─────────► IDLE
 *              ├ clear() (a commit runs, close) ────► IDLE
 *              └ fires ─ commits failing ─► commit (the retry)
 *                       └ else ─► decide again (what it was armed for may be acked by now)
 *
 * It does not commit by itself nor know what is pending: the host says (state()) and commits.
 */
import type { Scheduler } from "../clock/scheduler.ts";
import { type CommitState, commitDecision } from "./batching.ts";

/** The retry period of a failing commit, ms (and the least wait while commits fail). */
const RETRY_MS = 1000;

export interface CommitTimerHost {
  readonly scheduler: Scheduler;
  readonly cfg: { commitIntervalMs: number; commitMaxRows: number };
  monoMs(): number;
  closed(): boolean;
  /** The last commit failed (and none succeeded since). */
  failing(): boolean;
  /** Readings in the write-behind buffer (read on every capture: must be cheap). */
  pendingRows(): number;
  /** What waits for the next commit (batching.ts). */
  state(): CommitState;
  commit(): void;
}

export class CommitTimer {
  private timer: unknown;
  private dueMonoMs: number | undefined;

  constructor(private readonly host: CommitTimerHost) {}

  /** Commit now, arm (or bring forward) the timer, or disarm it when nothing waits. */
  schedule(): void {
    const host = this.host;
    if (host.closed()) return;
    // Fast path for capture(): a timer is already armed and the batch is not full.
    const rows = host.pendingRows();
    if (this.timer !== undefined && !host.failing() && rows < host.cfg.commitMaxRows && rows > 0) return;
    const decision = commitDecision(
      host.state(),
      host.monoMs(),
      host.failing() ? Math.max(host.cfg.commitIntervalMs, RETRY_MS) : host.cfg.commitIntervalMs,
      host.cfg.commitMaxRows,
    );
    if (decision.kind === "idle") {
      this.clear();
      return;
    }
    if (decision.kind === "now" && !host.failing()) {
      host.commit();
      return;
    }
    const ms = decision.kind === "wait" ? decision.ms : RETRY_MS;
    const due = host.monoMs() + ms;
    if (this.timer !== undefined && this.dueMonoMs !== undefined && this.dueMonoMs <= due) return;
    this.clear();
    this.dueMonoMs = due;
    this.timer = host.scheduler.setTimeout(() => {
      this.timer = undefined;
      this.dueMonoMs = undefined;
      // Decide again: the reading the timer was armed for may have been acked meanwhile, and
      // committing the younger ones now would write readings whose acks are still coming (flash
      // for nothing: with a live broker a commit a second, then their deletes). Retries of a
      // failed commit go ahead.
      if (host.failing()) host.commit();
      else this.schedule();
    }, ms);
  }

  clear(): void {
    if (this.timer !== undefined) this.host.scheduler.clearTimeout(this.timer);
    this.timer = undefined;
    this.dueMonoMs = undefined;
  }
}
