/**
 * Publisher drains the Queue to an MQTT broker through mqtt.js. createPublisher wires the parts
 * and runs the drain (window, rate limits, batching, acks, refusals); each part's own state
 * machine is written at the top of its module:
 *
 * - session.ts: the connection — one mqtt.js client per attempt (a "session"), CONNACK, the
 *   MQTT 5 → 3.1.1 fallback, reconnect with backoff; it tells this module when a session is up or
 *   lost, and whether the loss was early.
 * - inflight-window.ts: which readings are out (at most mqtt.max_inflight messages) or held by the
 *   batcher, and waiting for them to come back (stop()).
 * - poison.ts: suspects and strikes after lost sessions. retries.ts: transient refusals' retry
 *   timers. refusal.ts: what a reason code means. subscriptions.ts: the command transport's filters.
 *
 * mqtt.js never replays anything on its own. The Queue is the only source of truth. Rows handed to
 * the broker are marked inflight in the Queue; when a session ends its unacked rows stay marked,
 * and Queue.next() returns them first on the next connect (counted in stats().resent: duplicates
 * are possible, consumers dedupe on (device, seq)). On stop() the publisher waits for inflight
 * acks (or the timeout), publishes "offline" and sends DISCONNECT.
 *
 * Delivery: QoS 0 counts as delivered once written to the socket, QoS 1/2 on PUBACK/PUBCOMP; acks
 * are batched into one Queue.ack() per turn. A seq stays excluded from next() until its ack
 * reached the Queue, so it is never sent twice within one session.
 *
 * Refusals (see refusal.ts): a PUBACK/PUBREC reason ≥ 0x80 with a permanent code moves the reading
 * to dead letters (Queue.deadLetter) at once; a transient code keeps it inflight in its window slot
 * and lets it be sent again after a backoff. A poison pill — a message that makes the broker drop
 * the connection — is found by elimination: after a session that was lost with readings unacked,
 * the next sessions send one reading at a time until those suspects are acked; a reading that was
 * alone in flight when the connection dropped POISON_STRIKES times (each before the session was
 * stable) is moved to dead letters (poison.ts). Nothing the broker refuses can block the queue.
 * Suspects and strikes are kept in the queue's file (Queue.saveStrikes) and read back at start(),
 * so a device that restarts after each drop still strikes the reading out. A packet from the
 * broker that mqtt.js cannot parse after CONNACK (isProtocolError) ends the session at once as an
 * early drop. Transient refusals are one "episode" from the first to the next ack
 * (refusal-episode.ts): warned once and every 10 min, counted in stats (refusingForS), never dropped.
 *
 * MQTT version: mqtt.protocol_version, or 5 when unset (only 5 carries refusals); unset, a
 * CONNACK "unacceptable protocol version" moves the publisher to 3.1.1 once (session.ts).
 *
 * Batching ([mqtt.batch] enabled): readings of one stream travel together in one message
 * (src/wire/batch.ts); the Batcher (batcher.ts) holds them until a message is full or due, and
 * its header comment has the life of a batched reading. A batch's PUBACK acks every reading in
 * it; a refused batch is split in halves until the refused reading is alone, which goes to the
 * dead letter. max_rate counts messages, max_rate_bytes their payload and topic bytes.
 *
 * Status: "online" retained on every connect; last will "offline" retained (QoS 1); on stop()
 * the publisher publishes "offline" itself and then sends DISCONNECT, so the broker drops the will.
 */
import {
  type IClientOptions,
  type IClientPublishOptions,
  type MqttClient,
  connect as mqttConnect,
} from "mqtt";
import { realScheduler, type Scheduler } from "../clock/scheduler.ts";
import type { PublishStamp } from "../clock/types.ts";
import type { Config } from "../config/index.ts";
import { describeError } from "../errors/index.ts";
import { type Logger, silentLogger } from "../log/index.ts";
import type { QoS, Queue, QueuedReading } from "../queue/types.ts";
import { BATCH_CONTENT_TYPE, compressBatch } from "../wire/index.ts";
import { round3 } from "./backoff.ts";
import { encodeStampedBatch, envelopeLength, type StampedReading } from "./batch-encode.ts";
import { Batcher, type BatchItem, holdCap, splitHalves } from "./batcher.ts";
import {
  buildEnvelope,
  encodeEnvelope,
  STATUS_OFFLINE,
  STATUS_ONLINE,
  statusTopic,
  streamTopic,
} from "./envelope.ts";
import { PublisherNotConnectedError } from "./errors.ts";
import { InflightWindow } from "./inflight-window.ts";
import { PoisonSuspects, struckOutReason } from "./poison.ts";
import { type Refusal, refusalOf } from "./refusal.ts";
import { RefusalEpisode } from "./refusal-episode.ts";
import { TransientRetries } from "./retries.ts";
import { Connection, type Session } from "./session.ts";
import type { PublisherStats } from "./stats.ts";
import { type MessageHandler, Subscriptions } from "./subscriptions.ts";
import { availableTokens, createTokenBucket, msUntilToken, spendTokens, takeTokens } from "./token-bucket.ts";

export type MqttConfig = Config["mqtt"];

export interface PublisherOptions {
  mqtt: MqttConfig;
  deviceId: string;
  queue: Queue;
  /** The time to publish with a reading (the clock model re-stamps from better anchors). */
  stamp: (reading: QueuedReading) => PublishStamp;
  log?: Logger;
  /** [0, 1) like Math.random; drives the backoff jitter. */
  random?: () => number;
  /** Monotonic milliseconds; measures connection stability and feeds the rate limiter. */
  monoMs?: () => number;
  scheduler?: Scheduler;
  /** How long to wait for CONNACK before giving up on an attempt. Default 30 000. */
  connectTimeoutMs?: number;
  /** Grace for the "offline" status message on stop(), beyond the stop timeout. Default 2 000. */
  offlineGraceMs?: number;
  /** Opens the MQTT connection; mqtt.js's connect unless a test substitutes it. */
  connect?: (url: string, options: IClientOptions) => MqttClient;
}

export interface SendOptions {
  qos?: QoS;
  retain?: boolean;
  properties?: IClientPublishOptions["properties"];
}

export interface StopResult {
  /** Readings still unacked when the timeout ran out (they stay inflight in the Queue and are resent next start). */
  unacked: number;
}

/** Publisher is the broker side of fieldrelay: queue drain, status topic, and the command transport. */
export interface Publisher {
  /** Connect and start draining the queue. Idempotent. */
  start(): void;
  /**
   * Stop taking sends and publishing readings, wait up to timeoutMs for inflight acks, publish
   * "offline" (retained) and DISCONNECT cleanly so the broker does not fire the will.
   */
  stop(timeoutMs: number): Promise<StopResult>;
  stats(): PublisherStats;
  /** Subscribe now (if connected) and again after every reconnect. Returns an unsubscribe function. */
  subscribe(filter: string, qos: QoS, handler: MessageHandler): () => void;
  /** Publish one message; resolves when written (QoS 0) or acked (QoS 1/2); rejects when not connected. */
  send(topic: string, payload: string | Buffer, options?: SendOptions): Promise<void>;
}

/** Readings asked of the queue per next() call: bounds the work done per turn. */
const MAX_BATCH = 256;
/** The same when batching: enough to fill several full messages per call. */
const BATCH_FETCH = 4096;

/**
 * A reading on its way in a batch: stamped once, when it is taken (a resend keeps that stamp); its
 * envelope is written only if it goes alone, a batch is written from the parts (batch-encode.ts).
 */
interface Item extends BatchItem, StampedReading {}

export function createPublisher(options: PublisherOptions): Publisher {
  const cfg = options.mqtt;
  const { queue, deviceId } = options;
  const log = options.log ?? silentLogger();
  const random = options.random ?? Math.random;
  const monoMs = options.monoMs ?? (() => performance.now());
  const scheduler = options.scheduler ?? realScheduler;
  const clientId = cfg.client_id ?? `fieldrelay-${deviceId}`;
  const status = statusTopic(cfg.topic_prefix, deviceId);
  // Fails fast on unreadable TLS files (a typed error naming the file).
  const connection = new Connection({
    mqtt: cfg,
    clientId,
    willTopic: status,
    log,
    random,
    monoMs,
    scheduler,
    connect: options.connect ?? mqttConnect,
    connectTimeoutMs: options.connectTimeoutMs ?? 30_000,
    events: {
      connected: onConnect,
      lost: onLost,
      message: (topic, payload, packet) => subscriptions.dispatch(topic, payload, packet),
      packetsend: (packet) => {
        if (packet.cmd === "publish") countBytes(packet.topic, packet.payload);
      },
    },
  });

  let rateTimer: unknown;
  let unsubscribeQueue: (() => void) | undefined;
  const bucket = createTokenBucket(cfg.max_rate, monoMs());
  const byteBucket = createTokenBucket(cfg.max_rate_bytes, monoMs());
  const limits = {
    maxReadings: cfg.batch.max_readings,
    maxBytes: cfg.batch.max_bytes,
    maxDelayMs: cfg.batch.max_delay_ms,
    alonePriority: cfg.batch.alone_priority,
  };
  const batcher = cfg.batch.enabled ? new Batcher<Item>(limits) : undefined;
  /** Halves of refused batches, published before anything new. */
  const splits: Item[][] = [];
  let dueTimer: unknown;
  /** Transiently refused messages and readings waiting for their retry (each keeps its window slot). */
  const retries = new TransientRetries<Item>(scheduler, random, cfg.min_backoff_s, cfg.max_backoff_s);

  /** What is out at the broker or held by the batcher, and who waits for it (inflight-window.ts). */
  const inflight = new InflightWindow(scheduler);
  let pendingResends = 0;
  let ackBuffer: number[] = [];
  let ackFlushScheduled = false;
  let drainScheduled = false;
  const subscriptions = new Subscriptions(log);

  const counters = {
    published: 0,
    delivered: 0,
    resent: 0,
    deadLettered: 0,
    refused: 0,
    messages: 0,
    batchesSplit: 0,
    bytes: 0,
  };
  /** Transient refusals: counted and logged once per episode (refusal-episode.ts). */
  const refusing = new RefusalEpisode(log, monoMs);
  /** Reading topics are <prefix>/<device>/<stream>: one level below this, and not "status". */
  const streamTopicPrefix = `${cfg.topic_prefix}/${deviceId}/`;
  /** Readings unacked when a session was lost, and their strikes (poison.ts). */
  const suspects = new PoisonSuspects(queue, log, cfg.batch.max_readings);
  /** stream|code pairs already logged at warn: further refusals of the same kind go to debug. */
  const refusalsLogged = new Set<string>();
  /** bytesSent: what a reading message weighed on the wire, counted as it is written (resends too). */
  function countBytes(topic: string, payload: string | Buffer): void {
    if (!topic.startsWith(streamTopicPrefix)) return;
    const rest = topic.slice(streamTopicPrefix.length);
    if (rest.includes("/") || rest === "status") return;
    counters.bytes += Buffer.byteLength(topic) + Buffer.byteLength(payload);
  }

  function onConnect(s: Session): void {
    // Rows another session (or process) left inflight come first from next(): count them as resent.
    pendingResends = queue.stats().inflight;
    s.client.publish(status, STATUS_ONLINE, { qos: 1, retain: true }, (error) => {
      if (error && !s.closed) log.warn({ err: describeError(error) }, "could not publish online status");
    });
    resubscribeAll(s);
    scheduleDrain();
  }

  /** A session ended: what it had in flight stays inflight in the Queue and comes first next time. */
  function onLost(s: Session, wasConnected: boolean, early: boolean): void {
    if (
      batcher &&
      early &&
      inflight.messages === 1 &&
      inflight.seqs.size > 1 &&
      retries.messagesWaiting === 0
    )
      suspects.halveCap(inflight.seqs.size);
    if (wasConnected) suspectUnacked(early, s.protocolError ? s.error : undefined);
    // The window and the batcher forget what they held: those rows are marked inflight in the
    // Queue, next() returns them first.
    inflight.release();
    batcher?.release();
    splits.length = 0;
    clearRetries();
    pendingResends = 0;
    inflight.notifyIdle();
  }

  /** A connected session ended with readings unacked: they become suspects (poison.ts). */
  function suspectUnacked(early: boolean, protocolError: string | undefined): void {
    const unacked = [...inflight.seqs].filter((seq) => !retries.isWaiting(seq));
    if (unacked.length === 0) return;
    const struck = suspects.lost(unacked, early);
    if (struck)
      moveToDeadLetters(struck.seq, "", {
        kind: "permanent",
        code: 0,
        reason: struckOutReason(struck.strikes, protocolError),
      });
    suspects.keep();
  }

  function moveToDeadLetters(seq: number, stream: string, refusal: Refusal): void {
    try {
      queue.deadLetter([seq], refusal.reason);
    } catch (error) {
      // Could not store it aside (e.g. disk full): it stays inflight and is tried again next session.
      log.error({ seq, err: describeError(error) }, "could not move a refused message to dead letters");
      return;
    }
    suspects.delete(seq);
    retries.forget(seq);
    inflight.seqs.delete(seq);
    inflight.taken.delete(seq);
    counters.deadLettered++;
    refusing.last = refusal.reason;
    const key = `${stream}|${refusal.code}`;
    const fields = { seq, stream, reason: refusal.reason, deadLettered: counters.deadLettered };
    if (!refusalsLogged.has(key)) {
      refusalsLogged.add(key);
      log.warn(
        { ...fields, hint: "fieldrelay queue dead-letter list shows them; requeue after fixing the cause" },
        "message refused by the broker: moved to dead letters",
      );
    } else log.debug(fields, "message refused by the broker: moved to dead letters");
    inflight.notifyIdle();
    scheduleDrain();
  }

  /** A transient refusal of a lone reading: keep the slot, send again after a backoff. */
  function retryLater(seq: number, refusal: Refusal): void {
    const delayS = retries.reading(seq, () => {
      inflight.seqs.delete(seq);
      inflight.notifyIdle();
      scheduleDrain();
    });
    refusing.refused(refusal, { seq, retryInS: round3(delayS) });
  }

  function clearRetries(): void {
    for (const seq of retries.clear()) inflight.seqs.delete(seq);
  }

  function resubscribeAll(s: Session): void {
    const map = subscriptions.filters();
    if (Object.keys(map).length === 0) return;
    s.client.subscribe(map, (error) => {
      if (error && !s.closed) log.warn({ err: describeError(error) }, "subscribe failed");
    });
  }

  function scheduleDrain(): void {
    if (drainScheduled) return;
    drainScheduled = true;
    queueMicrotask(() => {
      drainScheduled = false;
      drain();
    });
  }

  function waitForRate(now: number): void {
    if (rateTimer !== undefined) return;
    rateTimer = scheduler.setTimeout(
      () => {
        rateTimer = undefined;
        drain();
      },
      Math.max(1, msUntilToken(bucket, now), msUntilToken(byteBucket, now)),
    );
  }

  function drain(): void {
    const s = connection.session;
    if (!s || connection.state !== "connected" || s.closed) return;
    if (batcher) {
      drainBatched(s, batcher);
      return;
    }
    // While suspects of a lost connection remain, one reading at a time finds the poison pill.
    const window = suspects.size > 0 ? 1 : cfg.max_inflight;
    while (inflight.seqs.size < window) {
      let room = Math.min(window - inflight.seqs.size, MAX_BATCH);
      const now = monoMs();
      room = Math.min(room, availableTokens(bucket, now));
      if (availableTokens(byteBucket, now) < 1) room = 0;
      if (room === 0) {
        waitForRate(now);
        return;
      }
      const batch = queue.next(room, inflight.seqs);
      if (batch.length === 0) return;
      // The queue sends inflight rows first: a non-suspect here means the suspects are gone (evicted).
      if (window === 1 && !suspects.has((batch[0] as QueuedReading).seq)) suspects.clear();
      takeTokens(bucket, batch.length, now);
      queue.markInflight(batch.map((r) => r.seq));
      for (const reading of batch) publishReading(s, reading);
      if (s.closed) return;
    }
  }

  const deviceJson = JSON.stringify(deviceId);
  const streamJson = new Map<string, string>();

  function toItem(reading: QueuedReading): Item {
    const stamp = options.stamp(reading);
    const { seq, stream, qos, priority } = reading;
    let sj = streamJson.get(stream);
    if (sj === undefined) {
      sj = JSON.stringify(stream);
      streamJson.set(stream, sj);
    }
    const item: Item = {
      seq,
      stream,
      qos,
      priority,
      bytes: 0,
      reading,
      stamp,
      valuesJson: JSON.stringify(reading.values),
    };
    // The single envelope's JSON length in characters, not UTF-8 bytes: max_bytes is a bound on
    // size, and counting bytes cost more than the rest.
    item.bytes = envelopeLength(deviceJson, item, sj);
    return item;
  }

  /** Take readings from the queue into the batcher, publish what is full or due, arm the due timer. */
  function drainBatched(s: Session, b: Batcher<Item>): void {
    const now = monoMs();
    if (suspects.size > 0 && drainSuspects(s, now)) return;
    while (b.readyCount < cfg.max_inflight - inflight.messages && b.held < holdCap(limits)) {
      const got = queue.next(BATCH_FETCH, inflight.taken);
      // Marked inflight as soon as they are held: the queue then skips them cheaply instead of
      // re-reading every held row on each next() (which made a batched drain slower than none),
      // and after a crash they are sent first, as they would have been anyway.
      if (got.length > 0) queue.markInflight(got.map((r) => r.seq));
      for (const reading of got) {
        inflight.taken.add(reading.seq);
        b.add(toItem(reading), now);
      }
      if (got.length < BATCH_FETCH) break;
    }
    while (inflight.messages < cfg.max_inflight) {
      const fromSplit = splits.length > 0;
      const items = splits.shift() ?? b.take(now);
      if (!items) break;
      if (availableTokens(bucket, now) < 1 || availableTokens(byteBucket, now) < 1) {
        if (fromSplit) splits.unshift(items);
        else b.unshift(items);
        waitForRate(now);
        return;
      }
      takeTokens(bucket, 1, now);
      publishItems(s, items, now);
      if (s.closed) return;
    }
    if (dueTimer !== undefined) scheduler.clearTimeout(dueTimer);
    dueTimer = undefined;
    const dueMs = b.msUntilDue(now);
    if (dueMs !== undefined && inflight.messages < cfg.max_inflight) {
      dueTimer = scheduler.setTimeout(
        () => {
          dueTimer = undefined;
          drain();
        },
        Math.max(1, dueMs),
      );
    }
  }

  /**
   * After a lost session, the readings it left unacked go one message at a time, at most
   * suspects.cap per message (poison.ts), until they are acked. Returns false once none is left.
   */
  function drainSuspects(s: Session, now: number): boolean {
    if (inflight.messages > 0) return true;
    // Suspects are among the inflight rows, which the queue returns first; so are rows the last
    // session held but never sent (marked when taken), so look past those.
    const pool = queue.next(BATCH_FETCH, inflight.taken).filter((r) => suspects.has(r.seq));
    const head = pool[0];
    if (!head) {
      suspects.clear(); // acked, dead-lettered or evicted meanwhile
      return false;
    }
    if (availableTokens(bucket, now) < 1 || availableTokens(byteBucket, now) < 1) {
      waitForRate(now);
      return true;
    }
    const same = pool.filter((r) => r.stream === head.stream && r.qos === head.qos).slice(0, suspects.cap);
    for (const r of same) inflight.taken.add(r.seq);
    queue.markInflight(same.map((r) => r.seq)); // they are (suspects were inflight): keeps it explicit
    takeTokens(bucket, 1, now);
    publishItems(s, same.map(toItem), now);
    return true;
  }

  function countPublished(n: number): void {
    counters.published += n;
    counters.messages++;
    const resent = Math.min(n, pendingResends);
    counters.resent += resent;
    pendingResends -= resent;
  }

  /**
   * Publish one message: a lone reading as its envelope, more as a batch. Same seqs on every
   * resend. Its readings are marked inflight in the Queue already (when they were taken).
   */
  function publishItems(s: Session, items: Item[], now: number): void {
    const seqs = items.map((i) => i.seq);
    for (const seq of seqs) inflight.seqs.add(seq);
    inflight.messages++;
    countPublished(items.length);
    const first = items[0]!;
    const topic = streamTopic(cfg.topic_prefix, deviceId, first.stream);
    const lone = items.length === 1;
    const payload = lone
      ? encodeEnvelope(buildEnvelope(first.reading, deviceId, first.stamp))
      : compressBatch(encodeStampedBatch(deviceId, items));
    spendTokens(byteBucket, Buffer.byteLength(payload) + topic.length, now);
    const publishOptions: IClientPublishOptions = { qos: first.reading.qos, retain: false };
    if (connection.v5) {
      publishOptions.properties = lone
        ? { userProperties: { seq: String(first.seq) } }
        : { contentType: BATCH_CONTENT_TYPE };
      if (cfg.message_expiry_s > 0) publishOptions.properties.messageExpiryInterval = cfg.message_expiry_s;
    }
    s.client.publish(topic, payload, publishOptions, (error) => {
      // The session ended first: the rows stay inflight in the Queue and are resent next session.
      if (s.closed || s !== connection.session) return;
      inflight.messages--;
      if (!error) {
        ackBuffer.push(...seqs);
        scheduleAckFlush();
        return;
      }
      const refusal = refusalOf(error);
      if (refusal === undefined) return;
      counters.refused++;
      if (refusal.kind === "transient") retryMessageLater(items, refusal);
      else if (items.length > 1) {
        // Split to isolate the refused reading; its neighbours go on in the other half.
        splits.unshift(...splitHalves(items));
        counters.batchesSplit++;
        log.debug(
          { stream: first.stream, readings: items.length, reason: refusal.reason },
          "broker refused a batch: splitting it to isolate the refused reading",
        );
        scheduleDrain();
      } else moveToDeadLetters(first.seq, first.stream, refusal);
    });
  }

  /** A transient refusal of a message: it keeps its window slot and goes again, whole, after a backoff. */
  function retryMessageLater(items: Item[], refusal: Refusal): void {
    inflight.messages++;
    const delayS = retries.message(items, () => {
      inflight.messages--;
      splits.unshift(items);
      scheduleDrain();
    });
    refusing.refused(refusal, { seq: items[0]!.seq, readings: items.length, retryInS: round3(delayS) });
  }

  function publishReading(s: Session, reading: QueuedReading): void {
    inflight.seqs.add(reading.seq);
    countPublished(1);
    const payload = encodeEnvelope(buildEnvelope(reading, deviceId, options.stamp(reading)));
    spendTokens(
      byteBucket,
      Buffer.byteLength(payload) + cfg.topic_prefix.length + deviceId.length + reading.stream.length + 2,
      monoMs(),
    );
    const publishOptions: IClientPublishOptions = { qos: reading.qos, retain: false };
    if (connection.v5) {
      publishOptions.properties = { userProperties: { seq: String(reading.seq) } };
      if (cfg.message_expiry_s > 0) publishOptions.properties.messageExpiryInterval = cfg.message_expiry_s;
    }
    s.client.publish(
      streamTopic(cfg.topic_prefix, deviceId, reading.stream),
      payload,
      publishOptions,
      (error) => {
        if (error) {
          // A refusal (MQTT 5 reason ≥ 0x80); any other error means the session ended first: the
          // row stays inflight in the Queue and is resent.
          const refusal = s.closed ? undefined : refusalOf(error);
          if (!refusal) return;
          counters.refused++;
          if (refusal.kind === "permanent") moveToDeadLetters(reading.seq, reading.stream, refusal);
          else retryLater(reading.seq, refusal);
          return;
        }
        ackBuffer.push(reading.seq);
        scheduleAckFlush();
      },
    );
  }

  function scheduleAckFlush(): void {
    if (ackFlushScheduled) return;
    ackFlushScheduled = true;
    queueMicrotask(flushAcks);
  }

  function flushAcks(): void {
    ackFlushScheduled = false;
    const seqs = ackBuffer;
    if (seqs.length === 0) return;
    ackBuffer = [];
    queue.ack(seqs);
    counters.delivered += seqs.length;
    refusing.acked();
    // Only now may next() return them again (it would not: they are deleted) — keep exclusion until here.
    const anySuspects = suspects.size > 0;
    const anyRetries = retries.anyAttempts;
    for (const seq of seqs) {
      inflight.seqs.delete(seq);
      inflight.taken.delete(seq);
      if (anySuspects) suspects.delete(seq);
      if (anyRetries) retries.forget(seq);
    }
    inflight.notifyIdle();
    drain();
  }

  function withTimeout<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
    return new Promise((resolve) => {
      const timer = scheduler.setTimeout(() => resolve(fallback), ms);
      void promise.then((value) => {
        scheduler.clearTimeout(timer);
        resolve(value);
      });
    });
  }

  async function stop(timeoutMs: number): Promise<StopResult> {
    if (connection.state === "stopped" || connection.state === "stopping")
      return { unacked: inflight.seqs.size };
    const deadline = monoMs() + timeoutMs;
    connection.stopping();
    unsubscribeQueue?.();
    unsubscribeQueue = undefined;
    if (rateTimer !== undefined) scheduler.clearTimeout(rateTimer);
    if (dueTimer !== undefined) scheduler.clearTimeout(dueTimer);
    rateTimer = dueTimer = undefined;
    clearRetries();

    const s = connection.session;
    let unacked = 0;
    if (s && s.connectedAtMs !== undefined && !s.closed) {
      await inflight.waitIdle(deadline - monoMs());
      flushAcks();
      unacked = inflight.seqs.size;
      if (unacked > 0)
        log.warn({ unacked }, "stop timeout: unacked readings stay queued and are resent next start");
      if (!s.closed) {
        const client = s.client;
        const offline = new Promise<boolean>((resolve) =>
          client.publish(status, STATUS_OFFLINE, { qos: 1, retain: true }, (error) => resolve(!error)),
        );
        const grace = Math.max(deadline - monoMs(), 0) + (options.offlineGraceMs ?? 2000);
        await withTimeout(offline, grace, false);
        // end(false) waits for every outgoing ack; drop the ones we gave up on so DISCONNECT goes now.
        for (const id of Object.keys(client.outgoing)) client.removeOutgoingMessage(Number(id));
        const ended = new Promise<boolean>((resolve) => client.end(false, {}, () => resolve(true)));
        if (!(await withTimeout(ended, 2000, false))) client.end(true);
      }
    } else if (s && !s.closed) {
      s.client.end(true);
    }
    connection.stopped();
    log.info({ unacked, reconnects: connection.reconnects, ...counters }, "publisher stopped");
    return { unacked };
  }

  return {
    start() {
      if (connection.state !== "idle") return;
      suspects.load();
      unsubscribeQueue = queue.onAvailable(scheduleDrain);
      connection.start();
    },
    stop,
    stats(): PublisherStats {
      return {
        connected: connection.state === "connected",
        reconnects: connection.reconnects,
        backoffS: connection.state === "waiting" ? connection.backoffS : 0,
        inflight: inflight.seqs.size,
        published: counters.published,
        delivered: counters.delivered,
        resent: counters.resent,
        lastError: connection.lastError,
        messagesSent: counters.messages,
        readingsSent: counters.published,
        batchesSplit: counters.batchesSplit,
        bytesSent: counters.bytes,
        refusedTransient: refusing.total,
        refusedPermanent: counters.refused - refusing.total,
        refusingForS: refusing.forS(),
        lastRefusal: refusing.last,
      };
    },
    subscribe(filter, qos, handler) {
      const remove = subscriptions.add(filter, qos, handler);
      const s = connection.session;
      if (s && connection.state === "connected") s.client.subscribe(filter, { qos });
      return () => {
        const unused = remove();
        const current = connection.session;
        if (current && connection.state === "connected" && unused) current.client.unsubscribe(filter);
      };
    },
    send(topic, payload, sendOptions = {}) {
      if (connection.state === "stopping" || connection.state === "stopped") {
        return Promise.reject(new PublisherNotConnectedError(topic, "stopping"));
      }
      const s = connection.session;
      if (!s || connection.state !== "connected")
        return Promise.reject(new PublisherNotConnectedError(topic, "disconnected"));
      return new Promise<void>((resolve, reject) => {
        inflight.pendingSends++;
        const publishOptions: IClientPublishOptions = {
          qos: sendOptions.qos ?? 0,
          retain: sendOptions.retain ?? false,
        };
        if (sendOptions.properties) publishOptions.properties = sendOptions.properties;
        s.client.publish(topic, payload, publishOptions, (error) => {
          inflight.pendingSends--;
          inflight.notifyIdle();
          if (error) reject(error);
          else resolve();
        });
      });
    },
  };
}
