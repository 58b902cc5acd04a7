/**
 * Pure simulation: given a profile, a phase per value, the time and a random source, produce
 * the values of one read. No I/O and no hidden clock, so tests can replay it exactly.
 */
import type { DeviceProfile } from "./profiles.ts";

export const DRIFT_PERIOD_MS = 5 * 60 * 1000;

/** mulberry32: a small seedable PRNG, good enough for simulated noise. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal deviate by Box–Muller. */
export function gaussian(random: () => number): number {
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export interface SimulatedRead {
  values: Record<string, number>;
  anomaly: Record<string, number> | undefined;
}

export function simulate(
  profile: DeviceProfile,
  phases: Record<string, number>,
  tMs: number,
  random: () => number,
): SimulatedRead {
  const values: Record<string, number> = {};
  for (const [name, p] of Object.entries(profile.values)) {
    const drift = p.drift * Math.sin((2 * Math.PI * tMs) / DRIFT_PERIOD_MS + (phases[name] ?? 0));
    values[name] = round(clamp(p.base + drift + p.noise * gaussian(random), p.min, p.max), p.decimals);
  }
  let anomaly: Record<string, number> | undefined;
  if (random() < profile.failureRate) {
    const names = Object.keys(profile.values);
    const name = names[Math.floor(random() * names.length)]!;
    const p = profile.values[name]!;
    anomaly = { [name]: round(clamp(values[name]! + p.spike, p.min, p.max), p.decimals) };
  }
  return { values, anomaly };
}

function clamp(x: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, x));
}

function round(x: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}
