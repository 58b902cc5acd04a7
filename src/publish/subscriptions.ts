/**
 * The publisher's subscriptions (the remote-command transport): who listens to which filter. They
 * outlive sessions — every new session subscribes to all of them again (clean sessions, mqtt.js
 * resubscribe off) — so they are kept here, apart from any one client. No I/O: the publisher sends
 * the SUBSCRIBE/UNSUBSCRIBE packets.
 */
import type { IPublishPacket } from "mqtt";
import { describeError } from "../errors/index.ts";
import type { Logger } from "../log/index.ts";
import type { QoS } from "../queue/types.ts";
import { topicMatches } from "./topic-filter.ts";

export type MessageHandler = (topic: string, payload: Buffer, packet: IPublishPacket) => void;

interface Subscription {
  filter: string;
  qos: QoS;
  handler: MessageHandler;
}

export class Subscriptions {
  private readonly list: Subscription[] = [];

  constructor(private readonly log: Logger) {}

  /**
   * Listen to filter. Returns the remover, which answers whether the filter is now without any
   * listener (so the broker may be told to stop sending it).
   */
  add(filter: string, qos: QoS, handler: MessageHandler): () => boolean {
    const sub: Subscription = { filter, qos, handler };
    this.list.push(sub);
    return () => {
      const at = this.list.indexOf(sub);
      if (at >= 0) this.list.splice(at, 1);
      return !this.list.some((x) => x.filter === filter);
    };
  }

  /** Each filter once, at the highest QoS asked for it: what a new session subscribes to. */
  filters(): Record<string, { qos: QoS }> {
    const map: Record<string, { qos: QoS }> = {};
    for (const sub of this.list) {
      const existing = map[sub.filter];
      map[sub.filter] = { qos: existing ? (Math.max(existing.qos, sub.qos) as QoS) : sub.qos };
    }
    return map;
  }

  /** Hand a message to every matching handler; one that throws is logged and does not stop the rest. */
  dispatch(topic: string, payload: Buffer, packet: IPublishPacket): void {
    for (const sub of this.list) {
      if (!topicMatches(sub.filter, topic)) continue;
      try {
        sub.handler(topic, payload, packet);
      } catch (error) {
        this.log.error({ topic, err: describeError(error) }, "message handler threw");
      }
    }
  }
}
