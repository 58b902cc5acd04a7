/**
 * A refusal episode: the broker refusing messages "for now" (PUBACK 0x97 quota exceeded), from the
 * first such refusal to the next ack. The publisher keeps every refused message and sends it again
 * after a backoff, for as long as it takes — readings are never dropped for a transient reason —
 * so what this module adds is visibility without a flood:
 *
 *   quiet ──refused()──► refusing (warn once: "broker refuses messages for now …")
 *   refusing ──refused()──► refusing (debug; warn again when REMINDER_MS have passed since the last)
 *   refusing ──acked()──► quiet (info: "broker takes messages again", with the count and duration)
 *
 * forS() is how long the current episode has lasted (0 when quiet): /health degrades on it.
 */
import type { Logger } from "../log/index.ts";
import type { Refusal } from "./refusal.ts";

/** While an episode goes on, its warning is repeated at most this often. */
export const REMINDER_MS = 10 * 60_000;

export class RefusalEpisode {
  /** Transient refusals in all episodes. */
  total = 0;
  /** The last refusal's reason (transient or not: the publisher sets it for permanent ones too). */
  last: string | undefined;
  private sinceMs: number | undefined;
  private warnedAtMs = Number.NEGATIVE_INFINITY;
  private count = 0;

  constructor(
    private readonly log: Logger,
    private readonly monoMs: () => number,
  ) {}

  refused(refusal: Refusal, fields: Record<string, unknown>): void {
    this.total++;
    this.count++;
    this.last = refusal.reason;
    const now = this.monoMs();
    this.sinceMs ??= now;
    const detail = {
      reason: refusal.reason,
      refusals: this.count,
      refusingForS: round3((now - this.sinceMs) / 1000),
      ...fields,
    };
    if (now - this.warnedAtMs >= REMINDER_MS) {
      this.warnedAtMs = now;
      this.log.warn(detail, "broker refuses messages for now; they stay queued and are retried");
    } else this.log.debug(detail, "broker refused a message for now; retrying");
  }

  /** An ack arrived: the episode (if any) is over. */
  acked(): void {
    if (this.sinceMs === undefined) return;
    this.log.info(
      { refusals: this.count, refusedForS: round3((this.monoMs() - this.sinceMs) / 1000) },
      "broker takes messages again",
    );
    this.sinceMs = undefined;
    this.warnedAtMs = Number.NEGATIVE_INFINITY;
    this.count = 0;
  }

  forS(): number {
    return this.sinceMs === undefined ? 0 : round3((this.monoMs() - this.sinceMs) / 1000);
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
