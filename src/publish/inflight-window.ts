/**
 * The drain's window: which readings are out, and who waits for them to come back.
 *
 *   queued ──taken by the batcher──► taken ──published──► inflight ──acked / dead-lettered──► gone
 *   inflight ──transient refusal──► inflight (waits for its retry, keeps its slot: retries.ts)
 *   taken / inflight ──session lost──► released (the Queue keeps the rows inflight; next() returns them first)
 *
 * At most mqtt.max_inflight messages are unacked (`messages`; a batch is one); `seqs` are the
 * readings in them (QoS 0: not yet written), `taken` adds the readings the batcher holds: next()
 * must return neither again. A seq leaves both only once its ack reached the Queue, so it is never
 * sent twice within one session.
 *
 * stop() waits for idle: no reading inflight and no command send (Publisher.send) unanswered.
 */
import type { Scheduler } from "../clock/scheduler.ts";

export class InflightWindow {
  /** Seqs handed to the broker and not yet acked (QoS 0: not yet written). */
  readonly seqs = new Set<number>();
  /** seqs plus the readings the batcher holds: what next() must not return again. */
  readonly taken = new Set<number>();
  /** Messages unacked (or waiting for a transient retry): the window max_inflight bounds. */
  messages = 0;
  /** Publisher.send() messages not answered yet: stop() waits for them too. */
  pendingSends = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly scheduler: Scheduler) {}

  /** The session was lost: nothing is out any more (the Queue still has the rows inflight). */
  release(): void {
    this.seqs.clear();
    this.taken.clear();
    this.messages = 0;
  }

  /** Wake whoever waits for idle, if it is. Call after anything that may empty the window. */
  notifyIdle(): void {
    if (this.seqs.size > 0 || this.pendingSends > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when idle, or after timeoutMs. */
  waitIdle(timeoutMs: number): Promise<void> {
    if (this.seqs.size === 0 && this.pendingSends === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.scheduler.setTimeout(resolve, Math.max(0, timeoutMs));
      this.idleWaiters.push(() => {
        this.scheduler.clearTimeout(timer);
        resolve();
      });
    });
  }
}
