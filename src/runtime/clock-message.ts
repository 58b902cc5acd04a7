/**
 * Publishes this boot's clock message (contract 2, src/wire/clock.ts): retained at QoS 1 on
 * `<prefix>/<device>/clock/<boot_id>`, carrying every anchor the clock keeps for the boot: at once
 * when the clock becomes synchronised (that is what fixes readings published before), and
 * otherwise when the anchors changed, at most once per MIN_REPUBLISH_MS (anchors change every
 * clock.anchor_interval_s; a message can be ~28 KB, and a synced device's readings need none).
 * Checked every few seconds. Retained, so a consumer that connects later — the fleet sink after an
 * outage — still gets the newest. A failed send is retried on the next check; nothing is queued
 * on disk: the next message supersedes it anyway.
 */
import type { Clock } from "../clock/index.ts";
import { describeError } from "../errors/index.ts";
import type { Logger } from "../log/index.ts";
import { CLOCK_MESSAGE_VERSION, clockTopic, encodeClockMessage } from "../wire/index.ts";

/** Changed anchors without a new sync are republished at most this often. */
export const MIN_REPUBLISH_MS = 3_600_000;

export interface ClockMessageOptions {
  clock: Pick<Clock, "bootId" | "anchors" | "anchorsVersion" | "syncEpoch">;
  prefix: string;
  deviceId: string;
  connected: () => boolean;
  send: (topic: string, payload: string, options: { qos: 1; retain: true }) => Promise<void>;
  log: Logger;
  /** How often to look for changed anchors, ms (default 5 000). */
  checkIntervalMs?: number;
  /** Monotonic ms (injected by tests). */
  monoMs: () => number;
}

/** Start publishing; returns a function that stops it. `check` is exposed for tests. */
export function startClockMessages(o: ClockMessageOptions): { stop: () => void; check: () => Promise<void> } {
  const topic = clockTopic(o.prefix, o.deviceId, o.clock.bootId);
  let published = -1;
  let publishedEpoch = -1;
  let publishedAt: number | undefined;
  let sending = false;
  async function check(): Promise<void> {
    const version = o.clock.anchorsVersion();
    const epoch = o.clock.syncEpoch();
    if (sending || version === published || !o.connected()) return;
    const due =
      publishedAt === undefined || epoch !== publishedEpoch || o.monoMs() - publishedAt >= MIN_REPUBLISH_MS;
    if (!due) return;
    const anchors = o.clock.anchors();
    if (anchors.length === 0) return;
    sending = true;
    try {
      await o.send(
        topic,
        encodeClockMessage({ v: CLOCK_MESSAGE_VERSION, device: o.deviceId, boot: o.clock.bootId, anchors }),
        { qos: 1, retain: true },
      );
      published = version;
      publishedEpoch = epoch;
      publishedAt = o.monoMs();
      o.log.debug({ topic, anchors: anchors.length }, "clock message published");
    } catch (error) {
      o.log.debug({ topic, err: describeError(error) }, "clock message not published; retrying");
    } finally {
      sending = false;
    }
  }
  const timer = setInterval(() => void check(), o.checkIntervalMs ?? 5000);
  timer.unref?.();
  return { stop: () => clearInterval(timer), check };
}
