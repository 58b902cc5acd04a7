import { describe, expect, it } from "vitest";
import { profileNames } from "../../src/sensors/simulated/profiles.ts";
import { type DecodedReading, decodeReadings, encodeBatch } from "../../src/wire/index.ts";
import { decodeWithReadmePython } from "../support/python-decoder.ts";
import { missing, PYTHON3 } from "../support/tools.ts";
import { profileReadings } from "../support/wire-readings.ts";

describe.skipIf(missing(PYTHON3))("the README's Python decoder (json + zlib only)", () => {
  it("decodes every batch and envelope exactly as decodeReadings does", () => {
    const payloads: Uint8Array[] = [];
    for (const profile of profileNames)
      for (const time of ["ntp", "unsynced"] as const)
        payloads.push(encodeBatch(profileReadings(profile, 200, { time })));
    const odd = profileReadings("sensor", 6, { time: "unsynced" }) as DecodedReading[];
    odd[1]!.tq = "corrected";
    delete odd[1]!.mono_ms;
    odd[2]!.mono_ms = 0.1 + 0.2;
    odd[3]!.seq += 1000;
    odd[4]!.ts = "1999-12-31T23:59:59.999Z";
    odd[5]!.time_note = "earlier boot, never anchored";
    odd[5]!.values = { state: "ü", open: false };
    payloads.push(encodeBatch([...odd].reverse()));
    payloads.push(new TextEncoder().encode(JSON.stringify(odd[0])));
    const python = decodeWithReadmePython(payloads);
    expect(python).toEqual(payloads.map((p) => decodeReadings(p)));
  });
});
