/**
 * Connection: the publisher's link to the broker, one mqtt.js client per attempt (a "session").
 *
 *   idle ──start()──► connecting ──CONNACK──► connected ──socket closed──► waiting
 *                        ▲  │ refused / TLS / timeout                        │
 *                        │  └──────────────────────────────► waiting ◄───────┘
 *                        └──── backoff timer: random()·min(max, min·2^attempt) ┘
 *   any state ──stopping()──► stopping ──(the publisher's goodbye)──stopped()──► stopped
 *
 * mqtt.js runs with reconnectPeriod 0, clean sessions, queueQoSZero false and no resubscribe,
 * and every attempt gets a fresh client (so a fresh in-memory outgoing store): mqtt.js never
 * replays anything on its own. What a lost session means for the readings it carried is the
 * publisher's business (SessionEvents.lost); this module only says whether the loss was early:
 * before stable_after_s, or on a packet from the broker mqtt.js cannot parse after CONNACK
 * (isProtocolError), which ends the session at once. The backoff restarts from its minimum only
 * after a session that lasted stable_after_s.
 *
 * MQTT version: mqtt.protocol_version, or 5 when unset (only 5 carries refusals); unset, a
 * CONNACK "unacceptable protocol version" moves the connection to 3.1.1 once, for its life, with a
 * warning. An explicit 5 never falls back (the error says to set 4); an explicit 4 is warned about
 * at the first connect.
 *
 * Repeated failures of the same kind are logged at warn once, then at debug: an outage is not a
 * log flood.
 */
import type { IClientOptions, IPublishPacket, MqttClient, Packet } from "mqtt";
import type { Scheduler } from "../clock/scheduler.ts";
import { type Config, redactUrl } from "../config/index.ts";
import { describeError } from "../errors/index.ts";
import type { Logger } from "../log/index.ts";
import { backoffDelayS, round3 } from "./backoff.ts";
import { brokerOptions } from "./broker-url.ts";
import { STATUS_OFFLINE } from "./envelope.ts";
import { isProtocolError } from "./refusal.ts";
import { loadTls, type TlsConnectOptions } from "./tls.ts";

export type ConnectionState = "idle" | "connecting" | "connected" | "waiting" | "stopping" | "stopped";

/** One attempt's client and what became of it; the publisher tells sessions apart by identity. */
export interface Session {
  client: MqttClient;
  connectedAtMs: number | undefined;
  closed: boolean;
  error: string | undefined;
  /** The broker sent something mqtt.js could not parse after CONNACK: counts as an early drop. */
  protocolError: boolean;
}

/** What the publisher does at the edges of a session. */
export interface SessionEvents {
  /** CONNACK: the session is up (state connected). */
  connected(s: Session): void;
  /**
   * The current session ended (its client is ended already). wasConnected: it had a CONNACK;
   * early: it was lost before it was stable, or on a protocol error. Called while stopping too,
   * before any reconnect is scheduled.
   */
  lost(s: Session, wasConnected: boolean, early: boolean): void;
  message(topic: string, payload: Buffer, packet: IPublishPacket): void;
  packetsend(packet: Packet): void;
}

export interface ConnectionOptions {
  mqtt: Config["mqtt"];
  clientId: string;
  /** The status topic: the last will ("offline", retained) goes there. */
  willTopic: string;
  log: Logger;
  random: () => number;
  monoMs: () => number;
  scheduler: Scheduler;
  connect: (url: string, options: IClientOptions) => MqttClient;
  connectTimeoutMs: number;
  events: SessionEvents;
}

function isSecureUrl(url: string): boolean {
  return url.startsWith("mqtts:") || url.startsWith("wss:");
}

export class Connection {
  state: ConnectionState = "idle";
  /** The current attempt's session, from connect until it is lost (or the publisher stopped). */
  session: Session | undefined;
  /** Why the last attempt failed or the last session ended; cleared at CONNACK. */
  lastError: string | undefined;
  /** The delay of the pending reconnect (meaningful while waiting). */
  backoffS = 0;
  /** Reconnect attempts made (each backoff timer that fired). */
  reconnects = 0;
  /**
   * The MQTT version spoken: protocol_version, or 5 when it is not set — only MQTT 5 lets the broker
   * say it refused a message (3.1.1 brokers ack an ACL-denied PUBLISH and drop it). Unset, a broker
   * that answers "unacceptable protocol version" moves this to 4 for the life of the publisher.
   */
  private protocol: 4 | 5;
  private warned311 = false;
  private readonly secure: boolean;
  /** The broker URL as logged: credentials in it are never written to the journal (#12). */
  private readonly shownUrl: string;
  private tls: TlsConnectOptions;
  private attempt = 0;
  private reconnectTimer: unknown;
  /** The failure last logged at warn level: repeats of it go to debug, so an outage is not a log flood. */
  private lastLoggedFailure: string | undefined;

  constructor(private readonly o: ConnectionOptions) {
    this.protocol = o.mqtt.protocol_version ?? 5;
    this.secure = isSecureUrl(o.mqtt.url);
    this.shownUrl = redactUrl(o.mqtt.url);
    // Fail fast on unreadable TLS files (a typed error naming the file).
    this.tls = loadTls(o.mqtt.tls);
  }

  /** MQTT 5 is spoken: PUBLISH may carry properties and PUBACKs carry refusals. */
  get v5(): boolean {
    return this.protocol === 5;
  }

  start(): void {
    this.connect();
  }

  /** No more reconnects: the publisher says goodbye on the session it has, if any. */
  stopping(): void {
    this.state = "stopping";
    if (this.reconnectTimer !== undefined) this.o.scheduler.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.backoffS = 0;
  }

  stopped(): void {
    this.session = undefined;
    this.state = "stopped";
  }

  private connect(): void {
    const cfg = this.o.mqtt;
    const log = this.o.log;
    this.reconnectTimer = undefined;
    this.backoffS = 0;
    this.state = "connecting";
    try {
      this.tls = loadTls(cfg.tls);
    } catch (error) {
      this.failAttempt(describeError(error));
      return;
    }
    if (this.secure && cfg.tls.insecure) {
      log.warn(
        { url: this.shownUrl },
        "TLS certificate verification is OFF (mqtt.tls.insecure = true): the broker is not authenticated",
      );
    }
    const mqttOptions: IClientOptions = {
      protocolVersion: this.protocol,
      clientId: this.o.clientId,
      clean: true,
      keepalive: cfg.keepalive_s,
      reconnectPeriod: 0,
      connectTimeout: this.o.connectTimeoutMs,
      queueQoSZero: false,
      resubscribe: false,
      will: { topic: this.o.willTopic, payload: Buffer.from(STATUS_OFFLINE), qos: 1, retain: true },
      ...this.tls,
    };
    if (cfg.username !== undefined) mqttOptions.username = cfg.username;
    if (cfg.password !== undefined) mqttOptions.password = cfg.password;
    let client: MqttClient;
    try {
      // Options, not the URL string: mqtt.js would parse it with the deprecated url.parse().
      client = this.o.connect("", { ...brokerOptions(cfg.url), ...mqttOptions });
    } catch (error) {
      this.failAttempt(describeError(error));
      return;
    }
    const s: Session = {
      client,
      connectedAtMs: undefined,
      closed: false,
      error: undefined,
      protocolError: false,
    };
    this.session = s;
    const events = this.o.events;
    client.on("connect", () => this.onConnect(s));
    client.on("error", (error) => this.onError(s, error));
    client.on("close", () => this.onClose(s));
    client.on("message", (topic, payload, packet) => events.message(topic, payload, packet));
    client.on("packetsend", (packet) => events.packetsend(packet));
  }

  private onConnect(s: Session): void {
    if (s !== this.session || s.closed) return;
    if (this.state === "stopping" || this.state === "stopped") {
      s.client.end(true);
      return;
    }
    this.state = "connected";
    s.connectedAtMs = this.o.monoMs();
    this.lastError = undefined;
    this.lastLoggedFailure = undefined;
    const log = this.o.log;
    log.info(
      { url: this.shownUrl, clientId: this.o.clientId, protocol: this.protocol },
      "connected to broker",
    );
    if (this.protocol === 4 && !this.warned311) {
      this.warned311 = true;
      log.warn(
        { url: this.shownUrl, hint: "set mqtt.protocol_version = 5 if the broker supports it" },
        "MQTT 3.1.1: a message the broker refuses (e.g. an ACL deny) is acknowledged and dropped without a trace",
      );
    }
    this.o.events.connected(s);
  }

  private onError(s: Session, error: Error): void {
    if (s !== this.session) return;
    s.error = describeError(error);
    this.lastError = s.error;
    if (s.closed) return;
    // Before CONNACK an error ends the attempt; make sure the socket goes so "close" follows.
    if (s.connectedAtMs === undefined) {
      if (this.isVersionRefusal(error)) this.refusedVersion(s);
      s.client.end(true);
    } else if (isProtocolError(error)) {
      // After CONNACK mqtt.js reports a packet it cannot parse (mosquitto's PUBACK 0x95 "packet
      // too large" is one: MQTT 5 does not allow it in a PUBACK) and keeps the socket, so the
      // session would only die at keepalive, long after stable_after_s, and the reading in flight
      // would never be struck out. End it now, as a lost connection that counts as an early drop
      // (onClose first, so the callbacks mqtt.js fails while ending see a closed session).
      s.protocolError = true;
      this.onClose(s);
    }
  }

  private onClose(s: Session): void {
    if (s.closed) return;
    s.closed = true;
    // Fail the old client's pending callbacks now (they are ignored: the rows stay inflight in the Queue).
    s.client.end(true);
    if (s !== this.session) return;
    this.session = undefined;
    const stableMs = this.o.mqtt.stable_after_s * 1000;
    const wasConnected = s.connectedAtMs !== undefined;
    const early = wasConnected && (s.protocolError || this.o.monoMs() - s.connectedAtMs! < stableMs);
    this.o.events.lost(s, wasConnected, early);
    if (this.state === "stopping" || this.state === "stopped") return;
    if (wasConnected && this.o.monoMs() - s.connectedAtMs! >= stableMs) this.attempt = 0;
    this.failAttempt(
      s.error ?? (wasConnected ? "connection to broker lost" : "connection closed before CONNACK"),
    );
  }

  /** CONNACK "unacceptable protocol version" (3.1.1 code 1, MQTT 5 0x84) to an MQTT 5 CONNECT. */
  private isVersionRefusal(error: Error): boolean {
    const code = (error as { code?: unknown }).code;
    return this.protocol === 5 && (code === 1 || code === 0x84);
  }

  private refusedVersion(s: Session): void {
    if (this.o.mqtt.protocol_version === 5) {
      s.error = `${s.error}: the broker does not speak MQTT 5 — set mqtt.protocol_version = 4 (its refusals are then invisible)`;
      this.lastError = s.error;
      return;
    }
    this.protocol = 4;
    this.warned311 = true;
    this.o.log.warn(
      {
        url: this.shownUrl,
        hint: "set mqtt.protocol_version = 4 to say this is intended; ACL-denied messages are then lost without a trace",
      },
      "the broker does not speak MQTT 5: using MQTT 3.1.1, where it cannot say it refused a message",
    );
  }

  private failAttempt(reason: string): void {
    const cfg = this.o.mqtt;
    this.lastError = reason;
    this.state = "waiting";
    const delayS = backoffDelayS(this.attempt, cfg.min_backoff_s, cfg.max_backoff_s, this.o.random);
    this.attempt++;
    this.backoffS = delayS;
    if (reason !== this.lastLoggedFailure) {
      this.o.log.warn(
        { url: this.shownUrl, err: reason, retryInS: round3(delayS) },
        "broker unavailable; readings stay queued",
      );
      this.lastLoggedFailure = reason;
    } else {
      this.o.log.debug(
        { err: reason, retryInS: round3(delayS), attempt: this.attempt },
        "broker still unavailable",
      );
    }
    this.reconnectTimer = this.o.scheduler.setTimeout(() => {
      this.reconnects++;
      this.connect();
    }, delayS * 1000);
  }
}
