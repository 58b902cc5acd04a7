/**
 * The MQTT side of the sink: an MQTT 5 persistent session (clean start off, a session expiry, a
 * fixed client id per sink process), QoS 1 subscriptions, and a PUBACK for each message sent only
 * after the transaction holding it committed.
 *
 * Subscriptions:
 *   $share/<group>/<prefix>/+/+    readings and status, shared: the sinks of a group split the load
 *                                  (share_group "": <prefix>/+/+, every sink takes every message)
 *   <prefix>/+/clock/+             clock messages, NOT shared (retain handling 1): every sink gets
 *                                  each boot's retained message once, which a shared subscription
 *                                  never delivers; applying one twice changes nothing.
 *
 * Acknowledging after COMMIT. mqtt.js's own hooks for it (customHandleAcks, handleMessage) run
 * inside its serial packet pipeline: the next PUBLISH is not read until the callback runs, so
 * deferring the callback to the commit would make every transaction hold one message (no group
 * commit, and keepalive answers stall behind the database). So the sink lets mqtt.js process
 * every PUBLISH at once, and holds the PUBACK instead: the client's outgoing PUBACKs are swallowed
 * (its pipeline continues as if sent) and the sink writes its own PUBACK, with the packet id, after
 * the commit. A PUBACK is only meaningful on the connection that carried the PUBLISH: each
 * connection is an epoch, and acks of an older epoch are dropped — the broker redelivers those
 * messages on the new connection (same session), and the insert is idempotent.
 * test/integration/sink.test.ts proves on mosquitto that no PUBACK leaves before COMMIT.
 */
import { readFileSync } from "node:fs";
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from "mqtt";
import { describeError } from "../errors/index.ts";
import type { Logger } from "../log/index.ts";
import { classifyMessage, type DeadLetterKind } from "./classify.ts";
import type { SinkConfig } from "./config.ts";
import type { Work } from "./store.ts";
import type { Writer } from "./writer.ts";

export interface ConsumerStats {
  connected: boolean;
  received: number;
  deadByKind: Record<string, number>;
  ignored: Record<string, number>;
  acked: number;
  staleAcksDropped: number;
  reconnects: number;
}

export interface Consumer {
  stats(): ConsumerStats;
  /** Stop receiving: end the connection (the session stays on the broker for the next start). */
  stop(): Promise<void>;
  readonly client: MqttClient;
}

export interface ConsumerOptions {
  mqtt: SinkConfig["mqtt"];
  maxPending: number;
  writer: Writer;
  log: Logger;
  nowMs: () => number;
}

type SendPacket = (
  packet: { cmd: string; messageId?: number },
  cb?: (err?: Error) => void,
  ...rest: unknown[]
) => void;

export function startConsumer(options: ConsumerOptions): Consumer {
  const { mqtt: m, writer, log, nowMs } = options;
  const stats: ConsumerStats = {
    connected: false,
    received: 0,
    deadByKind: {},
    ignored: {},
    acked: 0,
    staleAcksDropped: 0,
    reconnects: 0,
  };
  const loggedKinds = new Set<DeadLetterKind>();
  const clientOptions: IClientOptions = {
    protocolVersion: 5,
    clientId: m.client_id,
    clean: false,
    keepalive: m.keepalive_s,
    reconnectPeriod: Math.round(m.reconnect_s * 1000),
    connectTimeout: 30_000,
    properties: { sessionExpiryInterval: m.session_expiry_s, receiveMaximum: options.maxPending },
    // The sink subscribes itself on every connect (below).
    resubscribe: false,
  };
  if (m.username) clientOptions.username = m.username;
  if (m.password) clientOptions.password = m.password;
  if (m.url.startsWith("mqtts:") || m.url.startsWith("wss:")) {
    clientOptions.rejectUnauthorized = !m.tls.insecure;
    if (m.tls.ca) clientOptions.ca = readFileSync(m.tls.ca);
    if (m.tls.cert) clientOptions.cert = readFileSync(m.tls.cert);
    if (m.tls.key) clientOptions.key = readFileSync(m.tls.key);
    if (m.tls.servername) clientOptions.servername = m.tls.servername;
    if (m.tls.alpn.length > 0) clientOptions.ALPNProtocols = m.tls.alpn;
  }
  const client = mqtt.connect(m.url, clientOptions);

  // The PUBACK gate (see the module comment).
  const internal = client as unknown as { _sendPacket: SendPacket };
  const send = internal._sendPacket.bind(client);
  internal._sendPacket = (packet, cb, ...rest) => {
    if (packet.cmd === "puback") {
      cb?.();
      return;
    }
    send(packet, cb, ...rest);
  };
  let epoch = 0;
  const ackFor = (messageEpoch: number, messageId: number) => () => {
    if (messageEpoch !== epoch || !client.connected) {
      stats.staleAcksDropped += 1;
      return;
    }
    stats.acked += 1;
    // A commit acks many messages in one go: cork the socket so they leave in one write.
    const stream = (client as unknown as { stream?: { cork?: () => void; uncork?: () => void } }).stream;
    if (!corked && stream?.cork && stream.uncork) {
      corked = true;
      stream.cork();
      queueMicrotask(() => {
        corked = false;
        stream.uncork?.();
      });
    }
    send({ cmd: "puback", messageId, reasonCode: 0 } as never);
  };
  let corked = false;

  const readings = `${m.topic_prefix}/+/+`;
  const shared = m.share_group === "" ? readings : `$share/${m.share_group}/${readings}`;
  const clock = `${m.topic_prefix}/+/clock/+`;
  client.on("connect", (connack) => {
    stats.connected = true;
    log.info(
      { url: m.url, clientId: m.client_id, sessionPresent: connack.sessionPresent },
      "connected to the broker",
    );
    // Subscribe on every connect, also when the broker says the session is present: mosquitto 2.0
    // does not keep shared subscriptions across its own restart (the session comes back without
    // them). Subscribing again to an existing subscription keeps its queued messages, and retain
    // handling 1 sends the clock topics' retained messages only when the subscription is new.
    client.subscribe({ [shared]: { qos: 1 }, [clock]: { qos: 1, rh: 1 } }, (error, granted) => {
      if (error) log.error({ err: describeError(error) }, "subscribe failed");
      else if (granted?.some((g) => g.qos > 2))
        log.error({ granted }, "the broker refused a subscription (shared subscriptions need MQTT 5)");
      else log.info({ topics: [shared, clock] }, "subscribed");
    });
  });
  client.on("close", () => {
    if (stats.connected)
      log.warn({ url: m.url }, "broker connection lost; unacknowledged messages will be redelivered");
    stats.connected = false;
    // Acks of this connection can no longer be sent: forget its queued messages (they come again).
    const old = epoch;
    epoch += 1;
    writer.discard((p) => (p as { epoch?: number }).epoch === old);
  });
  client.on("reconnect", () => {
    stats.reconnects += 1;
  });
  client.on("error", (error) => {
    log.warn({ err: describeError(error) }, "broker connection error");
  });

  client.on("message", (topic, payload, packet: IPublishPacket) => {
    stats.received += 1;
    const classified = classifyMessage(m.topic_prefix, topic, payload, packet.properties?.contentType);
    let work: Work;
    switch (classified.kind) {
      case "readings":
      case "clock":
        work = classified;
        break;
      case "ignored":
        stats.ignored[classified.why] = (stats.ignored[classified.why] ?? 0) + 1;
        work = { kind: "ignored" };
        break;
      case "dead":
        stats.deadByKind[classified.dead] = (stats.deadByKind[classified.dead] ?? 0) + 1;
        if (!loggedKinds.has(classified.dead)) {
          loggedKinds.add(classified.dead);
          log.warn(
            { kind: classified.dead, topic, reason: classified.reason },
            "message refused and stored as a dead letter (logged once per kind; counted in fieldrelay_sink_dead_letters_total)",
          );
        }
        work = { kind: "dead", topic, payload, dead: classified.dead, reason: classified.reason };
        break;
    }
    const pending = {
      work,
      ack: packet.qos > 0 && packet.messageId !== undefined ? ackFor(epoch, packet.messageId) : () => {},
      receivedMs: nowMs(),
      topic,
      payload,
      epoch,
    };
    writer.add(pending);
  });

  return {
    client,
    stats: () => ({ ...stats, deadByKind: { ...stats.deadByKind }, ignored: { ...stats.ignored } }),
    async stop() {
      await client.endAsync();
    },
  };
}
