/**
 * Batcher groups readings the queue hands over into MQTT messages: one message per stream (and
 * QoS), closed when it reaches max_readings or max_bytes, or when its oldest reading has waited
 * max_delay_ms, so live data is never held longer than that. Pure: the caller passes the time.
 *
 * Why per stream (not per device): a batch is published on its stream's topic, so subscriptions
 * and broker ACLs per stream mean what they meant for single readings (a per-device batch topic
 * would carry a denied stream's readings past its ACL), and readings of one stream share their
 * value names, which is what deflate feeds on.
 *
 * Life of a reading in the publisher (batching on):
 *
 *   queue ──next()──► held (open group, excluded from next()) ──full / due / hold cap──► ready
 *   ready ──publish (markInflight)──► inflight ──PUBACK──► acked (Queue.ack, all of the message)
 *                                        │ refused (reason ≥ 0x80)
 *                                        ├─ n > 1: split in two halves, both published again (same seqs)
 *                                        └─ n = 1: dead letter
 *   session lost: held readings are released (never marked, they come back from next() in order);
 *   inflight ones stay marked in the Queue and are resent first, regrouped, with the same seqs.
 *
 * Readings with priority ≥ alone_priority skip the grouping and go alone at once.
 */

export interface BatchLimits {
  maxReadings: number;
  /** Most bytes of readings in one message, counted as their single-envelope JSON size. */
  maxBytes: number;
  maxDelayMs: number;
  /** Readings at or above this priority go alone, at once (11: none). */
  alonePriority: number;
}

/** What the batcher needs of a reading (the publisher's items carry more). */
export interface BatchItem {
  seq: number;
  stream: string;
  qos: number;
  priority: number;
  /** Its size as a single envelope, in bytes. */
  bytes: number;
}

interface OpenGroup<T extends BatchItem> {
  key: string;
  items: T[];
  bytes: number;
  openedMs: number;
}

/**
 * Readings in open groups beyond which the oldest group is closed whatever its size, so many
 * streams cannot hold unbounded RAM. The publisher also stops taking from the queue at this many held.
 */
export function holdCap(limits: BatchLimits): number {
  return Math.max(4 * limits.maxReadings, 10_000);
}

export class Batcher<T extends BatchItem> {
  private readonly open = new Map<string, OpenGroup<T>>();
  private readonly ready: T[][] = [];
  private heldCount = 0;
  /** Readings in open groups (the rest of heldCount is in ready ones). */
  private openCount = 0;

  constructor(readonly limits: BatchLimits) {}

  /** Readings held in open or ready groups. */
  get held(): number {
    return this.heldCount;
  }

  /** Closed messages waiting to be published. */
  get readyCount(): number {
    return this.ready.length;
  }

  add(item: T, nowMs: number): void {
    this.heldCount++;
    if (item.priority >= this.limits.alonePriority) {
      this.ready.push([item]);
      return;
    }
    const key = `${item.stream}\u0000${item.qos}`;
    let group = this.open.get(key);
    if (group && group.items.length > 0 && group.bytes + item.bytes > this.limits.maxBytes) {
      this.close(group);
      group = undefined;
    }
    if (!group) {
      group = { key, items: [], bytes: 0, openedMs: nowMs };
      this.open.set(key, group);
    }
    group.items.push(item);
    group.bytes += item.bytes;
    this.openCount++;
    if (group.items.length >= this.limits.maxReadings || group.bytes >= this.limits.maxBytes)
      this.close(group);
    else if (this.openCount >= holdCap(this.limits)) this.closeOldest();
  }

  /**
   * The next message to publish: a closed group, else an open group that is due (its oldest
   * reading waited max_delay_ms), or any open group when `flushAll` (stopping). Removes it.
   */
  take(nowMs: number, flushAll = false): T[] | undefined {
    if (this.ready.length === 0) {
      for (const group of this.open.values()) {
        if (flushAll || nowMs - group.openedMs >= this.limits.maxDelayMs) {
          this.close(group);
          break;
        }
      }
    }
    const items = this.ready.shift();
    if (items) this.heldCount -= items.length;
    return items;
  }

  /** Put a message back at the front (the rate limit said not yet). */
  unshift(items: T[]): void {
    this.ready.unshift(items);
    this.heldCount += items.length;
  }

  /** Milliseconds until the oldest open group falls due (0 if a message is ready); undefined when nothing is held. */
  msUntilDue(nowMs: number): number | undefined {
    if (this.ready.length > 0) return 0;
    let due: number | undefined;
    for (const group of this.open.values()) {
      const ms = Math.max(0, group.openedMs + this.limits.maxDelayMs - nowMs);
      due = due === undefined ? ms : Math.min(due, ms);
    }
    return due;
  }

  /** Forget everything held (the session ended); returns the readings released. */
  release(): T[] {
    const out = [...this.ready.flat(), ...[...this.open.values()].flatMap((g) => g.items)];
    this.ready.length = 0;
    this.open.clear();
    this.heldCount = 0;
    this.openCount = 0;
    return out;
  }

  private close(group: OpenGroup<T>): void {
    this.open.delete(group.key);
    this.openCount -= group.items.length;
    if (group.items.length > 0) this.ready.push(group.items);
  }

  private closeOldest(): void {
    let oldest: OpenGroup<T> | undefined;
    for (const group of this.open.values()) if (!oldest || group.openedMs < oldest.openedMs) oldest = group;
    if (oldest) this.close(oldest);
  }
}

/** Split a refused message in two halves (seq order kept), to isolate the reading the broker refuses. */
export function splitHalves<T>(items: readonly T[]): [T[], T[]] {
  const mid = Math.ceil(items.length / 2);
  return [items.slice(0, mid), items.slice(mid)];
}
