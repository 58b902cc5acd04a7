/**
 * Transient refusals waiting for their retry (PUBACK 0x97 quota exceeded and the like, refusal.ts).
 * A refused message keeps its window slot while it waits, so the publisher does not pour more into
 * a broker that just said "not now"; it goes again, unchanged, after a backoff:
 *
 *   sent ──transient refusal──► waiting (timer: backoffDelayS(attempt)) ──due──► sent again
 *   waiting ──session lost / stop (clear)──► gone here; the readings stay inflight in the Queue
 *
 * Attempts are counted per message key (a lone reading's seq, a batch's first seq), so the backoff
 * grows with each refusal of the same message, and survive clear() (a new session does not reset
 * a broker's quota); forget() drops them once the reading is acked or dead-lettered.
 */
import type { Scheduler } from "../clock/scheduler.ts";
import { backoffDelayS } from "./backoff.ts";

export class TransientRetries<T extends { seq: number }> {
  private readonly attempts = new Map<number, number>();
  /** Lone readings (unbatched drain) waiting: seq → timer. */
  private readonly readings = new Map<number, unknown>();
  /** Messages (batched drain) waiting: timer → their readings. */
  private readonly messages = new Map<unknown, T[]>();

  constructor(
    private readonly scheduler: Scheduler,
    private readonly random: () => number,
    private readonly minS: number,
    private readonly maxS: number,
  ) {}

  /** Send reading seq again later: due() runs when its backoff is over. Returns the delay in s. */
  reading(seq: number, due: () => void): number {
    const delayS = this.nextDelayS(seq);
    this.readings.set(
      seq,
      this.scheduler.setTimeout(() => {
        this.readings.delete(seq);
        due();
      }, delayS * 1000),
    );
    return delayS;
  }

  /** Send the message of these readings again later, whole. Returns the delay in s. */
  message(items: T[], due: () => void): number {
    const delayS = this.nextDelayS(items[0]!.seq);
    const timer: unknown = this.scheduler.setTimeout(() => {
      this.messages.delete(timer);
      due();
    }, delayS * 1000);
    this.messages.set(timer, items);
    return delayS;
  }

  /** A lone reading waits for its retry (it is inflight but not unacked at the broker). */
  isWaiting(seq: number): boolean {
    return this.readings.has(seq);
  }

  get messagesWaiting(): number {
    return this.messages.size;
  }

  get anyAttempts(): boolean {
    return this.attempts.size > 0;
  }

  /** Acked or dead-lettered: its next refusal starts from the shortest backoff. */
  forget(seq: number): void {
    this.attempts.delete(seq);
  }

  /** Cancel every pending retry; returns the seqs that were waiting (batched ones first). */
  clear(): number[] {
    const seqs: number[] = [];
    for (const [timer, items] of this.messages) {
      this.scheduler.clearTimeout(timer);
      for (const item of items) seqs.push(item.seq);
    }
    this.messages.clear();
    for (const [seq, timer] of this.readings) {
      this.scheduler.clearTimeout(timer);
      seqs.push(seq);
    }
    this.readings.clear();
    return seqs;
  }

  private nextDelayS(key: number): number {
    const attempt = this.attempts.get(key) ?? 0;
    this.attempts.set(key, attempt + 1);
    return backoffDelayS(attempt, this.minS, this.maxS, this.random);
  }
}
