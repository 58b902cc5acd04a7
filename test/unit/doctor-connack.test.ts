import { describe, expect, it } from "vitest";
import { type ConnectSent, connackCode, connackVerdict } from "../../src/doctor/connack.ts";

const sent = (o: Partial<ConnectSent> = {}): ConnectSent => ({
  protocolVersion: 4,
  username: "fieldrelay",
  password: true,
  clientId: "fieldrelay-pi-7-doctor",
  ...o,
});

describe("doctor: what a CONNACK refusal means", () => {
  it("writes codes as each spec does: decimal for MQTT 3.1.1, hex for MQTT 5", () => {
    expect(connackCode(5, 4)).toBe("5");
    expect(connackCode(0x87, 5)).toBe("0x87");
  });

  it("names the same reason for the same refusal in MQTT 3.1.1 and MQTT 5", () => {
    for (const [v3, v5, reason] of [
      [1, 0x84, /protocol version/],
      [2, 0x85, /client identifier/],
      [3, 0x88, /server unavailable/],
      [4, 0x86, /bad user name or password/],
      [5, 0x87, /not authorised/],
    ] as const) {
      expect(connackVerdict(v3, sent()).reason).toMatch(reason);
      expect(connackVerdict(v5, sent({ protocolVersion: 5 })).reason).toMatch(reason);
      if (v3 !== 1)
        expect(connackVerdict(v3, sent()).fix).toBe(connackVerdict(v5, sent({ protocolVersion: 5 })).fix);
    }
  });

  it("unsupported version: the fix names the other one", () => {
    expect(connackVerdict(1, sent()).fix).toMatch(/now 4: MQTT 3\.1\.1; the other is 5/);
    expect(connackVerdict(0x84, sent({ protocolVersion: 5 })).fix).toMatch(/now 5: MQTT 5; the other is 4/);
  });

  it("not authorised: the fix depends on what was sent (no user, user without password, both)", () => {
    expect(connackVerdict(5, sent({ username: undefined, password: false })).fix).toMatch(
      /^the broker takes no anonymous clients: set mqtt\.username and FIELDRELAY_MQTT_PASSWORD/,
    );
    expect(connackVerdict(5, sent({ password: false })).fix).toMatch(
      /^FIELDRELAY_MQTT_PASSWORD is not set here: run doctor as root/,
    );
    expect(connackVerdict(5, sent()).fix).toMatch(/against the broker's password file .* user fieldrelay$/);
  });

  it("server unavailable, busy, quota and rate limits: look at the broker, nothing is lost", () => {
    for (const code of [0x88, 0x89, 0x97, 0x9f])
      expect(connackVerdict(code, sent({ protocolVersion: 5 })).fix).toMatch(
        /broker runs but cannot serve clients now/,
      );
  });

  it("a rejected client id names the id doctor used and why it is not the service's", () => {
    expect(connackVerdict(2, sent()).fix).toMatch(
      /doctor connected as fieldrelay-pi-7-doctor \(the service's id plus -doctor/,
    );
  });

  it("an unknown code still says where to look", () => {
    expect(connackVerdict(0x99, sent({ protocolVersion: 5 }))).toEqual({
      reason: "refused (CONNACK 0x99)",
      fix: "look in the broker's log for why it refused the CONNECT",
    });
  });
});
