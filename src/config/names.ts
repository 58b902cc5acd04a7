/**
 * Names that MQTT can carry. A device id, the topic prefix and stream names become topic levels;
 * MQTT 5 §1.5.4 (and 3.1.1 §1.5.3) say a UTF-8 string MUST NOT hold U+0000, SHOULD NOT hold the
 * control characters U+0001–U+001F and U+007F–U+009F nor non-characters, and that a receiver MAY
 * close the connection on them — mosquitto does ("malformed packet"), so one such name used to
 * block delivery for good. Refused here, at config load and at ingest, with the reason. Pure.
 */

/** Stream names the device's own topics use: `<prefix>/<device>/status`, `…/clock/<boot>`, `…/cmd/<name>`. */
export const RESERVED_STREAMS: ReadonlySet<string> = new Set(["status", "clock", "cmd"]);

/** MQTT's limit for a topic name, in UTF-8 bytes. */
export const MAX_TOPIC_BYTES = 65_535;

function isNonCharacter(cp: number): boolean {
  return (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe;
}

function describe(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
}

/**
 * Why `s` cannot be sent as (part of) an MQTT topic, or undefined when it can. Checks code
 * points only; the wildcard and separator rules are the caller's.
 */
export function mqttStringProblem(s: string): string | undefined {
  let at = 0;
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdfff) {
      const next = s.charCodeAt(i + 1);
      if (unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        const cp = ((unit - 0xd800) << 10) + (next - 0xdc00) + 0x10000;
        if (isNonCharacter(cp)) return `non-character ${describe(cp)} at position ${at}`;
        i++;
        at++;
        continue;
      }
      return `unpaired surrogate ${describe(unit)} at position ${at}`;
    }
    if (unit === 0) return `NUL at position ${at}`;
    if (unit <= 0x1f || (unit >= 0x7f && unit <= 0x9f))
      return `control character ${describe(unit)} at position ${at}`;
    if (isNonCharacter(unit)) return `non-character ${describe(unit)} at position ${at}`;
    at++;
  }
  return undefined;
}
