/**
 * What a broker's CONNACK refusal means, for `fieldrelay doctor`: the return code (MQTT 3.1.1) or
 * reason code (MQTT 5) of the CONNECT doctor sent with the configured credentials, turned into a
 * reason and one fix line. Pure.
 *
 * mosquitto (2.0) answers a wrong password, an unknown user and an anonymous client on a broker
 * with allow_anonymous false all with "not authorised" (5 / 0x87), never "bad user name or
 * password"; the fix therefore depends on what doctor sent: no user, a user without a password in
 * this environment, or a user and a password.
 */

export interface ConnectSent {
  protocolVersion: 4 | 5;
  username: string | undefined;
  /** A password was sent (FIELDRELAY_MQTT_PASSWORD was set where doctor ran). */
  password: boolean;
  clientId: string;
}

const V3: Record<number, string> = {
  1: "unacceptable protocol version",
  2: "client identifier rejected",
  3: "server unavailable",
  4: "bad user name or password",
  5: "not authorised",
};

const V5: Record<number, string> = {
  128: "unspecified error",
  129: "malformed packet",
  130: "protocol error",
  131: "implementation specific error",
  132: "unsupported protocol version",
  133: "client identifier not valid",
  134: "bad user name or password",
  135: "not authorised",
  136: "server unavailable",
  137: "server busy",
  138: "banned",
  140: "bad authentication method",
  149: "packet too large",
  151: "quota exceeded",
  154: "retain not supported",
  155: "QoS not supported",
  156: "use another server",
  157: "server moved",
  159: "connection rate exceeded",
};

type Kind = "version" | "client_id" | "unavailable" | "credentials" | "not_authorised" | "banned" | "other";

function kindOf(code: number, v: 4 | 5): Kind {
  if (v === 4)
    return (
      (
        {
          1: "version",
          2: "client_id",
          3: "unavailable",
          4: "credentials",
          5: "not_authorised",
        } as const
      )[code] ?? "other"
    );
  if (code === 0x84) return "version";
  if (code === 0x85) return "client_id";
  if (code === 0x86 || code === 0x8c) return "credentials";
  if (code === 0x87) return "not_authorised";
  if (code === 0x8a) return "banned";
  if ([0x88, 0x89, 0x97, 0x9f].includes(code)) return "unavailable";
  return "other";
}

/** "5" for MQTT 3.1.1, "0x87" for MQTT 5 (the way each spec writes them). */
export function connackCode(code: number, v: 4 | 5): string {
  return v === 4 ? String(code) : `0x${code.toString(16).padStart(2, "0")}`;
}

export function connackReason(code: number, v: 4 | 5): string {
  return (v === 4 ? V3 : V5)[code] ?? "refused";
}

const PASSWORD_MISSING =
  "FIELDRELAY_MQTT_PASSWORD is not set here: run doctor as root (it reads /etc/fieldrelay/env like the service) or export it";

/** The refusal's reason, "(CONNACK n)", and what to do about it. */
export function connackVerdict(code: number, sent: ConnectSent): { reason: string; fix: string } {
  const v = sent.protocolVersion;
  const reason = `${connackReason(code, v)} (CONNACK ${connackCode(code, v)})`;
  const userWithoutPassword = sent.username !== undefined && !sent.password;
  switch (kindOf(code, v)) {
    case "version":
      return {
        reason,
        fix: `set mqtt.protocol_version to one the broker speaks (now ${v}: ${v === 4 ? "MQTT 3.1.1" : "MQTT 5"}; the other is ${v === 4 ? 5 : 4})`,
      };
    case "client_id":
      return {
        reason,
        fix: `doctor connected as ${sent.clientId} (the service's id plus -doctor, so as not to end its session): if the broker ties clients to ids, check mqtt.client_id there; strict MQTT 3.1.1 brokers take 1–23 letters and digits`,
      };
    case "unavailable":
      return {
        reason,
        fix: "the broker runs but cannot serve clients now: look at its log (auth backend, storage, connection limits); readings stay queued meanwhile, nothing is lost",
      };
    case "credentials":
      return {
        reason,
        fix: userWithoutPassword
          ? PASSWORD_MISSING
          : "check mqtt.username and FIELDRELAY_MQTT_PASSWORD against the broker's accounts",
      };
    case "not_authorised":
      if (sent.username === undefined)
        return {
          reason,
          fix: "the broker takes no anonymous clients: set mqtt.username and FIELDRELAY_MQTT_PASSWORD to an account in its password file (mosquitto_passwd)",
        };
      if (userWithoutPassword) return { reason, fix: PASSWORD_MISSING };
      return {
        reason,
        fix: `check mqtt.username and FIELDRELAY_MQTT_PASSWORD against the broker's password file (mosquitto says "not authorised" for a wrong password and for an unknown user alike), then its ACL or auth plugin for user ${sent.username}`,
      };
    case "banned":
      return { reason, fix: "the broker has banned this client or user: ask its operator" };
    default:
      return { reason, fix: "look in the broker's log for why it refused the CONNECT" };
  }
}
