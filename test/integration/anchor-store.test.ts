/**
 * The clock's anchors in the real queue database (#13 follow-up, item 2): the RTC's per-anchor
 * ppm is stored, and the anchors table stays bounded: the current boot keeps what the clock keeps
 * (compactAnchors), an earlier boot keeps everything while it still has readings in the queue and
 * only its newest anchor once it has none. Deletions ride in the transaction of an anchor insert.
 */
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MAX_ANCHORS_PER_BOOT } from "../../src/clock/bounds.ts";
import { createClock } from "../../src/clock/clock.ts";
import { Ds3231Model } from "../../src/clock/rtc/model.ts";
import { openRtc } from "../../src/clock/rtc/select.ts";
import type { Anchor } from "../../src/clock/types.ts";
import { ModelBus } from "../../src/hal/i2c/model-bus.ts";
import { silentLogger } from "../../src/log/index.ts";
import { openQueue, openQueueReader, type QueueOptions } from "../../src/queue/index.ts";
import { Workspace } from "../support/fieldrelay.ts";
import { BOOT, ManualClock, reading } from "../support/queue-fakes.ts";

const ws = new Workspace("fr-anchor-store-");
afterAll(() => ws.cleanup());
let dirs = 0;

async function fresh(bootId = BOOT) {
  const dir = join(ws.dir, `q${++dirs}`);
  mkdirSync(dir, { recursive: true });
  const clock = new ManualClock();
  const opts: QueueOptions = {
    path: join(dir, "queue.db"),
    log: silentLogger(),
    bootId,
    monoMs: clock.monoMs,
    scheduler: clock.scheduler,
    freeDiskBytes: () => 10 * 1024 ** 3,
  };
  return { q: await openQueue(opts), opts, dir };
}

function rowsPerBoot(path: string): Record<string, number> {
  const db = new Database(path, { readonly: true });
  try {
    const out: Record<string, number> = {};
    for (const r of db.query("SELECT boot_id, count(*) AS n FROM anchors GROUP BY boot_id").all() as Array<{
      boot_id: string;
      n: number;
    }>)
      out[r.boot_id] = r.n;
    return out;
  } finally {
    db.close();
  }
}

const rtcAnchor = (bootId: string, i: number, ppm: number): Anchor => ({
  bootId,
  monoNs: BigInt(i) * 600_000_000_000n,
  wallMs: 1_764_000_000_000 + i * 600_000,
  source: "rtc",
  uncertaintyMs: 2,
  ppm,
});

describe("anchor store in the queue database", () => {
  it("stores each RTC anchor's ppm and gives it back after a reopen (queue and read-only reader)", async () => {
    const { q, opts } = await fresh();
    q.saveAnchor(rtcAnchor(BOOT, 1, 2));
    q.saveAnchor(rtcAnchor(BOOT, 2, 3.5));
    q.saveAnchor({ bootId: BOOT, monoNs: 5n, wallMs: 1, source: "ntp", uncertaintyMs: 4 });
    await q.close();
    const again = await openQueue(opts);
    const byMono = (a: Anchor, b: Anchor) => (a.monoNs < b.monoNs ? -1 : 1);
    const ppms = again
      .anchorsFor(BOOT)
      .sort(byMono)
      .map((a) => a.ppm);
    expect(ppms).toEqual([undefined, 2, 3.5]);
    await again.close();
    const reader = openQueueReader(opts.path);
    expect(
      reader
        .anchorsFor(BOOT)
        .sort(byMono)
        .map((a) => a.ppm),
    ).toEqual([undefined, 2, 3.5]);
    reader.close();
  });

  it("ten synced days keep the boot's anchors at the clock's bound, not 2 rows per interval", async () => {
    const { q, opts } = await fresh();
    let elapsed = 0;
    const T0 = Date.UTC(2026, 9, 1);
    const model = new Ds3231Model({ nowMs: () => elapsed, timeMs: T0, osf: false });
    const bus = new ModelBus("/dev/i2c-1", { 104: model });
    const root = join(ws.dir, `root${dirs}`);
    mkdirSync(join(root, "proc/sys/kernel/random"), { recursive: true });
    await Bun.write(join(root, "proc/sys/kernel/random/boot_id"), `${BOOT}\n`);
    const choice = await openRtc({ mode: "i2c", root, busNumber: 1, openBus: async () => bus });
    const clock = createClock({
      root,
      syncSource: { name: "test", read: () => ({ synced: true, estimatedErrorMs: 5 }) },
      anchors: q,
      rtc: choice.rtc,
      log: silentLogger(),
      monoNs: () => 1_000_000_000n + BigInt(Math.round(elapsed * 1e6)),
      wallMs: () => T0 + elapsed,
      scheduler: () => () => {},
      sleep: async (ms) => {
        elapsed += ms;
      },
      anchorIntervalS: 600,
      maxDriftMs: 2000,
      tickIntervalMs: 600_000,
    });
    await clock.start();
    for (let i = 0; i < 10 * 144; i++) {
      elapsed += 600_000;
      await clock.tick();
    }
    clock.stop();
    const rows = rowsPerBoot(opts.path)[BOOT] ?? 0;
    console.log(`anchors rows after 10 days synced (600 s interval): ${rows}`);
    expect(rows).toBeLessThanOrEqual(MAX_ANCHORS_PER_BOOT + 1);
    expect(rows).toBeGreaterThan(MAX_ANCHORS_PER_BOOT / 2);
    // What stays is what the clock keeps: its anchors from the store equal its compacted set.
    expect(q.anchorsFor(BOOT).length).toBe(rows);
    await q.close();
  }, 120_000);

  it("an earlier boot keeps its anchors while it has readings queued, and only its newest once it has none", async () => {
    const OLD_SENT = "0ld00000-0000-4000-8000-00000000005e";
    const OLD_QUEUED = "0ld00000-0000-4000-8000-0000000000a0";
    const { q, opts } = await fresh();
    for (let i = 0; i < 40; i++) {
      q.saveAnchor(rtcAnchor(OLD_SENT, i, 2));
      q.saveAnchor(rtcAnchor(OLD_QUEUED, i, 2));
    }
    const sent = q.capture(reading({ bootId: OLD_SENT }));
    const queued = q.capture(reading({ bootId: OLD_QUEUED }));
    if (!sent.ok || !queued.ok) throw new Error("capture refused");
    await q.flush();
    q.ack([sent.seq]);
    await q.flush();
    await q.close();
    // A new boot: its first anchor saves, and the housekeeping rides in that transaction.
    const again = await openQueue({ ...opts, bootId: BOOT });
    again.saveAnchor(rtcAnchor(BOOT, 1, 2));
    const rows = rowsPerBoot(opts.path);
    expect(rows[OLD_QUEUED]).toBe(40);
    expect(rows[OLD_SENT]).toBe(1);
    expect(again.anchorsFor(OLD_SENT)[0]?.monoNs).toBe(39n * 600_000_000_000n);
    await again.close();
  });
});
