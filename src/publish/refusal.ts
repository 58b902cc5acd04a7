/**
 * What a broker's "no" to a PUBLISH means for the reading. Pure: no I/O.
 *
 * With MQTT 5 a PUBACK/PUBREC carries a reason code; mqtt.js hands codes ≥ 0x80 to the publish
 * callback as an Error with `code`. Any other error there means the session ended before the
 * ack: not a refusal, the reading stays inflight and is resent on the next connection.
 *
 * - transient: the broker may take it later (quota, rate, busy, shutting down). Retry after a
 *   backoff; the reading keeps its place.
 * - permanent: the broker will never take it as it is (ACL, topic name, payload format, and any
 *   code this table does not know). Move it to dead letters so nothing behind it waits.
 *
 * MQTT 3.1.1 has no reason codes: a broker that refuses a publish there (mosquitto's ACL) acks it
 * anyway and drops it, so refusals are only visible with MQTT 5 (the default; see session.ts).
 *
 * Of the transient codes only 0x97 is allowed in a PUBACK; a broker that sends another code MQTT 5
 * does not allow there (mosquitto 2.0's 0x95 packet too large) makes mqtt-packet fail to parse the
 * packet: isProtocolError, which the publisher counts as an early drop of the message in flight.
 */

export type Refusal = { kind: "permanent" | "transient"; code: number; reason: string };

/** Reason codes after which the same PUBLISH may succeed later. */
export const TRANSIENT_REASON_CODES: ReadonlySet<number> = new Set([
  0x88, // Server unavailable
  0x89, // Server busy
  0x8b, // Server shutting down
  0x93, // Receive Maximum exceeded
  0x96, // Message rate too high
  0x97, // Quota exceeded
]);

const NAMES: Record<number, string> = {
  128: "Unspecified error",
  131: "Implementation specific error",
  135: "Not authorized",
  136: "Server unavailable",
  137: "Server busy",
  139: "Server shutting down",
  144: "Topic Name invalid",
  147: "Receive Maximum exceeded",
  149: "Packet too large",
  150: "Message rate too high",
  151: "Quota exceeded",
  153: "Payload format invalid",
  154: "Retain not supported",
  155: "QoS not supported",
};

/** "0x87 Not authorized" */
export function describeReasonCode(code: number): string {
  return `0x${code.toString(16).padStart(2, "0")} ${NAMES[code] ?? "refused"}`;
}

/** Classify a reason code ≥ 0x80; undefined for success codes (< 0x80). */
export function classifyReasonCode(code: number): Refusal | undefined {
  if (!Number.isInteger(code) || code < 0x80 || code > 0xff) return undefined;
  const kind = TRANSIENT_REASON_CODES.has(code) ? "transient" : "permanent";
  return { kind, code, reason: `broker refused the PUBLISH: ${describeReasonCode(code)}` };
}

/** The refusal carried by a publish callback's error, or undefined when the error is not a refusal. */
export function refusalOf(error: unknown): Refusal | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "number" ? classifyReasonCode(code) : undefined;
}

/** mqtt.js's own errors that are about time or shutdown, not about what the broker sent. */
const NOT_PROTOCOL = new Set(["Keepalive timeout", "connack timeout", "client disconnecting"]);

/**
 * Is an error the client emitted after CONNACK about a packet the broker sent (one mqtt-packet
 * could not parse, or that breaks the protocol)? Socket errors carry an errno string code
 * (ECONNRESET, EPIPE) and end the connection anyway; mqtt.js's timeouts are not the broker's words.
 */
export function isProtocolError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (typeof (error as { code?: unknown }).code === "string") return false;
  return !NOT_PROTOCOL.has(error.message);
}
