/**
 * Which crash states to check, chosen from a decoded dm-log-writes log (pure).
 *
 * - A flush point: the device state right after a FLUSH or FUA entry — everything before it was
 *   on the medium at that instant, so a power cut then leaves exactly this prefix.
 * - A mid-flush sample: a power cut between two durability points p and q (several per interval
 *   at the full size, each with its own subset). The device holds the
 *   prefix up to p, plus any subset of the plain writes logged in (p, q) — they completed but no
 *   flush covered them, so the cache may have kept or lost each one. A seeded PRNG picks the
 *   subset. Acknowledged are the marks up to the last mark before q: an ack after p can only rest
 *   on a flush at or before p.
 *
 * The marks the workload writes (see test/crash/guest/workload.ts):
 *   "a<seq>"           every reading the client got a 201 for, up to seq, is acknowledged
 *   "b<lo>-<hi>,<s>…"  the broker received these seqs (logged before it sent the PUBACKs)
 *   "p<name>"          a phase of the workload begins
 */

import { seededRandom } from "../../../src/sensors/simulated/model.ts";
import { isDurabilityPoint, type LogEntry, writesData } from "./log-writes.ts";

export interface CrashPoint {
  kind: "flush" | "sample";
  /** Entries [0, at] are applied (the durability point itself for both kinds). */
  at: number;
  /** Sample only: indices of plain writes after `at` that the device kept. */
  keep: number[];
  /** Marks at indices ≤ marksUpTo count as done. */
  marksUpTo: number;
}

export interface PlanOptions {
  /** Mid-flush samples per interval between durability points (0.35: about one in three). */
  sampleRate: number;
  seed: number;
  /** Check at most this many flush points, spread evenly (undefined: all). */
  maxFlushPoints?: number;
}

/** prng: mulberry32 (the simulated sensors' seeded generator), so a failing sample can be reproduced from its seed. */
export const prng = seededRandom;

/** The crash points of a log, in log order (flush point p before the samples after p). */
export function planCrashPoints(entries: readonly LogEntry[], o: PlanOptions): CrashPoint[] {
  const random = prng(o.seed);
  const durable = entries.filter(isDurabilityPoint).map((e) => e.index);
  let chosen = new Set(durable);
  if (o.maxFlushPoints !== undefined && durable.length > o.maxFlushPoints) {
    const step = durable.length / o.maxFlushPoints;
    chosen = new Set(Array.from({ length: o.maxFlushPoints }, (_, i) => durable[Math.floor(i * step)]!));
  }
  const points: CrashPoint[] = [];
  for (let d = 0; d < durable.length; d++) {
    const p = durable[d]!;
    const q = durable[d + 1] ?? entries.length;
    if (chosen.has(p)) points.push({ kind: "flush", at: p, keep: [], marksUpTo: p });
    const between = entries.slice(p + 1, q);
    const writes = between.filter(writesData).map((e) => e.index);
    const marks = between.filter((e) => e.kind === "mark").map((e) => e.index);
    if (writes.length + marks.length === 0) continue;
    const n = Math.floor(o.sampleRate) + (random() < o.sampleRate % 1 ? 1 : 0);
    const horizons = marks.length ? marks : [p];
    const samples: CrashPoint[] = [];
    for (let k = 0; k < n; k++) {
      // Each unflushed write survives with probability 1/2. The first sample takes every mark of
      // the interval as done, the others a random one of them (a power cut earlier in it).
      const keep = writes.filter(() => random() < 0.5);
      const marksUpTo =
        k === 0 ? horizons[horizons.length - 1]! : horizons[Math.floor(random() * horizons.length)]!;
      samples.push({ kind: "sample", at: p, keep, marksUpTo });
    }
    // Mark horizons must never go back along the list (Obligations only moves forward).
    points.push(...samples.sort((a, b) => a.marksUpTo - b.marksUpTo));
  }
  return points;
}

/** Inclusive seq ranges "1-5,7,9-10" → numbers (the broker marks' payload). */
export function parseRanges(text: string): number[] {
  const out: number[] = [];
  if (text === "") return out;
  for (const part of text.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`bad seq range "${part}" in "${text}"`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    for (let s = lo; s <= hi; s++) out.push(s);
  }
  return out;
}

/** Numbers → the shortest "lo-hi,s" text (sorted, duplicates dropped). */
export function formatRanges(seqs: Iterable<number>): string {
  const sorted = [...new Set(seqs)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/** One fact a mark records, in log order. */
export type MarkEvent =
  | { at: number; kind: "ack"; seqs: number[] }
  | { at: number; kind: "broker"; seqs: number[] }
  | { at: number; kind: "phase"; name: string };

/**
 * Decodes the marks of a log. A mark's text is one or more parts joined by ";": "a<ranges>" (the
 * client got a 201 for these seqs), "b<ranges>" (the broker received them; logged before it sent
 * the PUBACKs), "p<name>" (a workload phase begins).
 */
export function markEvents(entries: readonly LogEntry[]): MarkEvent[] {
  const out: MarkEvent[] = [];
  for (const e of entries) {
    if (e.kind !== "mark" || e.mark === undefined) continue;
    for (const part of e.mark.split(";")) {
      const tag = part[0];
      const rest = part.slice(1);
      if (tag === "a") out.push({ at: e.index, kind: "ack", seqs: parseRanges(rest) });
      else if (tag === "b") out.push({ at: e.index, kind: "broker", seqs: parseRanges(rest) });
      else if (tag === "p") out.push({ at: e.index, kind: "phase", name: rest });
    }
  }
  return out;
}

/**
 * What must be in the queue at a crash point, advanced mark by mark (points are checked in log
 * order, and their mark horizons never go back): every acknowledged seq the broker had not yet
 * received and the queue could not have evicted, plus the highest seq handed out so far.
 */
export class Obligations {
  private next = 0;
  private readonly brokered = new Set<number>();
  /** Acknowledged, not yet received by the broker, not evictable. */
  readonly owed = new Set<number>();
  issuedHigh = 0;
  phase = "start";

  constructor(
    private readonly events: readonly MarkEvent[],
    private readonly evictable: ReadonlySet<number>,
  ) {}

  advanceTo(upTo: number): void {
    for (; this.next < this.events.length && this.events[this.next]!.at <= upTo; this.next++) {
      const ev = this.events[this.next]!;
      if (ev.kind === "phase") {
        this.phase = ev.name;
        continue;
      }
      for (const s of ev.seqs) {
        this.issuedHigh = Math.max(this.issuedHigh, s);
        if (ev.kind === "broker") {
          this.brokered.add(s);
          this.owed.delete(s);
        } else if (!this.brokered.has(s) && !this.evictable.has(s)) {
          this.owed.add(s);
        }
      }
    }
  }
}
