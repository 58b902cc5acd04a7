/**
 * Poison pills: a message that makes the broker drop the connection instead of refusing it. Found
 * by elimination, since the broker says nothing about which message it was:
 *
 *   clear ──session lost with readings unacked──► suspects (strikes 0; sent one at a time)
 *   suspect ──lost again while alone in flight, before the session was stable──► strikes + 1
 *   suspect ──strikes reach POISON_STRIKES──► struck out (the publisher dead-letters it)
 *   suspect ──acked / dead-lettered──► gone; none left (or none still queued) ──► clear
 *
 * While suspects remain the publisher sends one message at a time; with batching a message carries
 * at most `cap` readings, halved at each early loss with one batch in flight, so a batch that kills
 * the connection is cut down until the one reading that does is alone.
 *
 * Suspects and strikes are kept in the queue's file (Queue.saveStrikes) at every loss and read back
 * at start (load): a device that restarts after each drop (crash loop, watchdog) still strikes the
 * reading out instead of starting over. Acked or dead-lettered seqs left in the kept set are ignored
 * when it is read back, so acks need no writes.
 */
import { describeError } from "../errors/index.ts";
import type { Logger } from "../log/index.ts";
import type { Queue } from "../queue/types.ts";

/**
 * Strikes after which a message that was alone in flight each time the broker dropped the
 * connection counts as a poison pill. Three, so that one broker restart (or two) with an innocent
 * message in flight does not move it aside.
 */
export const POISON_STRIKES = 3;

/** A reading struck out: alone in flight at POISON_STRIKES early losses. */
export interface StruckOut {
  seq: number;
  strikes: number;
}

export class PoisonSuspects {
  /** Most readings per message while suspects remain (see the header); maxReadings when clear. */
  cap: number;
  /** Seqs unacked when a session was lost, and how often each was alone in flight at such a loss. */
  private readonly strikes = new Map<number, number>();

  constructor(
    private readonly queue: Pick<Queue, "strikes" | "saveStrikes">,
    private readonly log: Logger,
    private readonly maxReadings: number,
  ) {
    this.cap = maxReadings;
  }

  get size(): number {
    return this.strikes.size;
  }

  has(seq: number): boolean {
    return this.strikes.has(seq);
  }

  /** Acked or dead-lettered: no longer a suspect. */
  delete(seq: number): void {
    this.strikes.delete(seq);
  }

  /** No suspect is left in the queue (acked, dead-lettered or evicted): back to full messages. */
  clear(): void {
    this.strikes.clear();
    this.cap = this.maxReadings;
  }

  /** The session ended early with one batch of `readings` in flight: the next try sends half. */
  halveCap(readings: number): void {
    this.cap = Math.ceil(readings / 2);
  }

  /**
   * A connected session ended with these readings unacked: each becomes a suspect; one that was
   * alone in flight gets a strike if the session never became stable. Returns it when that strike
   * was its last; the caller moves it to dead letters (and that deletes it here), then calls keep().
   */
  lost(unacked: readonly number[], early: boolean): StruckOut | undefined {
    if (unacked.length === 1 && early) {
      const seq = unacked[0] as number;
      const strikes = (this.strikes.get(seq) ?? 0) + 1;
      this.strikes.set(seq, strikes);
      return strikes >= POISON_STRIKES ? { seq, strikes } : undefined;
    }
    for (const seq of unacked) if (!this.strikes.has(seq)) this.strikes.set(seq, 0);
    return undefined;
  }

  /**
   * Write the suspects and their strikes (0-strike ones included, so the next life also sends them
   * one at a time) to the queue's file. A failure only costs the memory across a restart.
   */
  keep(): void {
    try {
      this.queue.saveStrikes(this.strikes);
    } catch (error) {
      this.log.warn(
        { err: describeError(error) },
        "could not keep poison-pill strikes on disk; they count in RAM",
      );
    }
  }

  /** The strikes an earlier process kept: its suspects are ours until they are acked. */
  load(): void {
    try {
      for (const [seq, n] of this.queue.strikes())
        this.strikes.set(seq, Math.max(n, this.strikes.get(seq) ?? 0));
    } catch (error) {
      this.log.warn(
        { err: describeError(error) },
        "could not read kept poison-pill strikes; counting from zero",
      );
    }
    if (this.strikes.size > 0)
      this.log.info(
        { suspects: this.strikes.size },
        "readings unacked at a lost connection before this start go one at a time",
      );
  }
}

/** The dead-letter reason of a struck-out reading; protocolError: the last loss was on an unparsable answer. */
export function struckOutReason(strikes: number, protocolError: string | undefined): string {
  return protocolError === undefined
    ? `the broker dropped the connection ${strikes} times while this message was the only one in flight`
    : `the session ended ${strikes} times while this message was the only one in flight, last on an answer from the broker the client cannot parse (${protocolError}; mosquitto answers a message over its message_size_limit so)`;
}
