/**
 * Envelope-shaped readings from the simulated device profiles, for batch-format tests and the
 * bytes-on-the-wire benchmark: the values the simulator produces, a steady interval with a few ms
 * of jitter, and (for "unsynced") the boot/mono_ms/te_ms fields the clock adds while time can improve.
 */

import { seededRandom, simulate } from "../../src/sensors/simulated/model.ts";
import { type ProfileName, profiles } from "../../src/sensors/simulated/profiles.ts";
import type { DecodedReading } from "../../src/wire/index.ts";

export const BOOT = "3f1c2a9e-8d7b-4c6a-9e2f-1a2b3c4d5e6f";

export function profileReadings(
  profile: ProfileName,
  n: number,
  options: {
    time?: "ntp" | "unsynced";
    firstSeq?: number;
    stream?: string;
    device?: string;
    seed?: number;
  } = {},
): DecodedReading[] {
  const p = profiles[profile];
  const random = seededRandom(options.seed ?? 7);
  const phases = Object.fromEntries(Object.keys(p.values).map((k, i) => [k, i]));
  const out: DecodedReading[] = [];
  let wallMs = Date.UTC(2026, 10, 30, 1, 2, 3, 456);
  let monoUs = 123_456_789;
  for (let i = 0; i < n; i++) {
    const sim = simulate(p, phases, wallMs, random);
    const r: DecodedReading = {
      seq: (options.firstSeq ?? 100_042) + i,
      device: options.device ?? "pi-7",
      stream: options.stream ?? profile,
      ts: new Date(wallMs).toISOString(),
      tq: options.time === "unsynced" ? "unsynced" : "ntp",
      te_ms: options.time === "unsynced" ? 1000 + Math.floor(i / 20) : 12,
      values: sim.anomaly ? { ...sim.values, ...sim.anomaly } : sim.values,
    };
    if (sim.anomaly) r.anomaly = true;
    if (options.time === "unsynced") {
      r.boot = BOOT;
      r.mono_ms = monoUs / 1000;
    }
    out.push(r);
    const step = p.defaultIntervalS * 1000 + Math.round((random() - 0.5) * 4);
    wallMs += step;
    monoUs += step * 1000 + Math.floor(random() * 500);
  }
  return out;
}
