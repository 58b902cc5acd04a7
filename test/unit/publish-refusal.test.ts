import { describe, expect, it } from "vitest";
import {
  classifyReasonCode,
  describeReasonCode,
  isProtocolError,
  refusalOf,
} from "../../src/publish/refusal.ts";

describe("PUBACK refusal classification (#12)", () => {
  it("treats codes below 0x80 as success, including 0x10 no matching subscribers", () => {
    for (const code of [0, 0x10, 0x7f]) expect(classifyReasonCode(code)).toBeUndefined();
  });
  it.each([0x80, 0x83, 0x87, 0x90, 0x95, 0x99, 0x9a, 0x9b, 0xa2])("reason code %i is permanent", (code) => {
    expect(classifyReasonCode(code)?.kind).toBe("permanent");
  });
  it.each([0x88, 0x89, 0x8b, 0x93, 0x96, 0x97])("reason code %i is transient", (code) => {
    expect(classifyReasonCode(code)?.kind).toBe("transient");
  });
  it("reads the code off mqtt.js's error, and is not fooled by a socket error code", () => {
    expect(refusalOf(Object.assign(new Error("Publish error: Not authorized"), { code: 0x87 }))).toEqual({
      kind: "permanent",
      code: 0x87,
      reason: "broker refused the PUBLISH: 0x87 Not authorized",
    });
    expect(refusalOf(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }))).toBeUndefined();
    expect(refusalOf(new Error("Connection closed"))).toBeUndefined();
    expect(describeReasonCode(0x97)).toBe("0x97 Quota exceeded");
  });
  it("calls a packet the client could not parse a protocol error, but not a socket error or mqtt.js's own timeouts", () => {
    expect(isProtocolError(new Error("Invalid puback reason code"))).toBe(true);
    expect(isProtocolError(Object.assign(new Error("exceeding packets size publish"), { code: 149 }))).toBe(
      true,
    );
    expect(isProtocolError(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }))).toBe(false);
    expect(isProtocolError(new Error("Keepalive timeout"))).toBe(false);
    expect(isProtocolError("Invalid puback reason code")).toBe(false);
  });
});
