/**
 * Second-edge capture. Every path to the RTC (sysfs since_epoch, the DS3231's registers) gives
 * whole seconds, so one read says only "somewhere in this second": ±500 ms. Polling until the
 * second changes pins down the instant it ticked:
 *
 *   coarse: read every COARSE_POLL_MS until the value changes (at most MAX_WAIT_MS). The tick lies
 *           between the start of the last read that showed the old second and the end of the
 *           first that showed the new one.
 *   fine:   the next tick comes one RTC second later, so sleep until just before it and read
 *           every FINE_POLL_MS until it changes again (at most FINE_WINDOW_MS after the
 *           prediction). If that window misses, the coarse bracket stands.
 *
 * The result pairs the RTC's new second with the mono midpoint of the bracket; uncertaintyMs is
 * half the bracket — a few ms on the direct I2C path. An RTC whose second never changes (stopped
 * oscillator, a fake tree) or jumps by other than one second (set meanwhile) yields no edge, and
 * the caller falls back to the middle of the second read (±500 ms plus the read time).
 */
import type { RtcReading } from "./types.ts";

export const COARSE_POLL_MS = 20;
export const FINE_POLL_MS = 1;
export const FINE_LEAD_MS = 25;
export const FINE_WINDOW_MS = 60;
export const MAX_WAIT_MS = 1500;

export interface EdgeIo {
  read(): Promise<RtcReading>;
  /** CLOCK_MONOTONIC, ms. */
  monoMs(): number;
  sleep(ms: number): Promise<void>;
}

export interface RtcSample {
  reading: RtcReading;
  /** The RTC's time at monoMs, ms. */
  wallMs: number | undefined;
  monoMs: number;
  /** Half-width of the instant's bracket, ms. */
  uncertaintyMs: number;
  edge: boolean;
}

interface Read {
  reading: RtcReading;
  start: number;
  end: number;
}

async function timedRead(io: EdgeIo): Promise<Read> {
  const start = io.monoMs();
  const reading = await io.read();
  return { reading, start, end: io.monoMs() };
}

/** Poll until the second changes; the bracket [prev.start, cur.end] holds the tick. */
async function waitForTick(io: EdgeIo, prev: Read, pollMs: number, untilMs: number) {
  // Bounded by the deadline and by a count, so a monotonic clock that does not move (a test's
  // frozen clock) cannot make it spin.
  for (let n = Math.ceil((untilMs - io.monoMs()) / pollMs) + 2; n > 0 && io.monoMs() < untilMs; n--) {
    await io.sleep(pollMs);
    const cur = await timedRead(io);
    if (!cur.reading.valid || cur.reading.wallMs === undefined) return { invalid: cur };
    if (cur.reading.wallMs !== prev.reading.wallMs) {
      if (cur.reading.wallMs - prev.reading.wallMs! !== 1000) return { jumped: cur };
      return { tick: { reading: cur.reading, lo: prev.start, hi: cur.end } };
    }
    prev = cur;
  }
  return { timeout: prev };
}

const plain = (r: Read): RtcSample => ({
  reading: r.reading,
  wallMs: r.reading.wallMs === undefined ? undefined : r.reading.wallMs + 500,
  monoMs: (r.start + r.end) / 2,
  uncertaintyMs: 500 + (r.end - r.start) / 2,
  edge: false,
});

/** One plain read: the middle of the second, ±500 ms (module comment). */
export async function readRtcPlain(io: EdgeIo): Promise<RtcSample> {
  return plain(await timedRead(io));
}

/** Read the RTC at a second's edge (module comment). An invalid reading is returned as read. */
export async function readRtcEdge(io: EdgeIo): Promise<RtcSample> {
  const first = await timedRead(io);
  if (!first.reading.valid || first.reading.wallMs === undefined) return plain(first);
  const coarse = await waitForTick(io, first, COARSE_POLL_MS, first.start + MAX_WAIT_MS);
  if (!coarse.tick) return plain(coarse.invalid ?? coarse.jumped ?? coarse.timeout ?? first);
  let { reading, lo, hi } = coarse.tick;
  const predicted = (lo + hi) / 2 + 1000;
  const lead = predicted - FINE_LEAD_MS - io.monoMs();
  if (lead > 0) await io.sleep(lead);
  const before = await timedRead(io);
  if (before.reading.valid && before.reading.wallMs === reading.wallMs) {
    const fine = await waitForTick(io, before, FINE_POLL_MS, predicted + FINE_WINDOW_MS);
    if (fine.tick) ({ reading, lo, hi } = fine.tick);
  }
  return { reading, wallMs: reading.wallMs, monoMs: (lo + hi) / 2, uncertaintyMs: (hi - lo) / 2, edge: true };
}
