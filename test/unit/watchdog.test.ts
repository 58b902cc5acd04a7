import { describe, expect, it } from "vitest";
import { WatchdogGate } from "../../src/system/index.ts";
import { fakeStatus, type StatusOverrides } from "../support/runtime-status.ts";

const T0 = 1_000_000;
const WINDOW = 20_000;

/** The status at time `now`, with the sampler turning at `sampler` and the queue as given. */
const at = (now: number, o: StatusOverrides = {}) => ({
  now,
  status: fakeStatus({ samplerProgressMonoMs: now - 100, startedMonoMs: T0 - 1000, ...o }),
});

describe("WatchdogGate", () => {
  it("feeds while the sampler turns and nothing waits to be written", () => {
    const gate = new WatchdogGate(WINDOW);
    for (let t = T0; t < T0 + 100_000; t += 10_000) {
      const { now, status } = at(t, { queue: { pendingInRam: 0, lastCommitMonoMs: T0 - 500_000 } });
      expect(gate.decide(status, now)).toEqual({ feed: true, reason: undefined });
    }
  });

  it("stops feeding when the sampler loop stalls, and resumes when it turns again", () => {
    const gate = new WatchdogGate(WINDOW);
    expect(gate.decide(fakeStatus({ samplerProgressMonoMs: T0 }), T0 + WINDOW).feed).toBe(true);
    const stalled = gate.decide(fakeStatus({ samplerProgressMonoMs: T0 }), T0 + WINDOW + 1);
    expect(stalled.feed).toBe(false);
    expect(stalled.reason).toContain("sampler loop made no progress for 20001 ms");
    expect(gate.decide(fakeStatus({ samplerProgressMonoMs: T0 + WINDOW + 1 }), T0 + WINDOW + 2).feed).toBe(
      true,
    );
  });

  it("stops feeding when readings wait in RAM and the writer neither commits nor drains", () => {
    const gate = new WatchdogGate(WINDOW);
    const stuck = {
      pendingInRam: 50,
      committed: 100,
      deliveredBeforeCommit: 20,
      lastCommitMonoMs: T0,
      lastError: "SQLITE_IOERR",
    };
    let d = gate.decide(at(T0, { queue: stuck }).status, T0);
    expect(d.feed).toBe(true);
    d = gate.decide(at(T0 + WINDOW, { queue: stuck }).status, T0 + WINDOW);
    expect(d.feed).toBe(true);
    d = gate.decide(at(T0 + WINDOW + 5_000, { queue: stuck }).status, T0 + WINDOW + 5_000);
    expect(d).toEqual({
      feed: false,
      reason: expect.stringContaining(
        "database writer made no progress for 25000 ms with 50 readings waiting (SQLITE_IOERR)",
      ),
    });
  });

  it("keeps feeding while a full disk is retried (a restart would not make room)", () => {
    const gate = new WatchdogGate(WINDOW);
    for (let i = 0; i <= 10; i++) {
      const now = T0 + i * 15_000;
      const q = {
        pendingInRam: 50,
        committed: 100,
        lastCommitMonoMs: T0,
        lastCommitAttemptMonoMs: now - 1_000,
        lastError: "SQLITE_FULL: database or disk is full",
      };
      expect(gate.decide(at(now, { queue: q }).status, now).feed).toBe(true);
    }
  });

  it("keeps feeding while a failing card is retried (a restart could not open the queue: a loop)", () => {
    const gate = new WatchdogGate(WINDOW);
    for (let i = 0; i <= 10; i++) {
      const now = T0 + i * 15_000;
      const q = {
        pendingInRam: 50,
        committed: 100,
        lastCommitMonoMs: T0,
        lastCommitAttemptMonoMs: now - 1_000,
        lastError: "SQLITE_IOERR_WRITE: disk I/O error",
        storageFault:
          "storage fault on /var/lib/fieldrelay/queue.db (/dev/mmcblk0p3 179:3 ext4 on /var/lib/fieldrelay, mounted read-only now): …",
      };
      expect(gate.decide(at(now, { queue: q }).status, now).feed).toBe(true);
    }
  });

  it("counts readings acked before their commit deadline as writer progress", () => {
    const gate = new WatchdogGate(WINDOW);
    // Every reading is delivered before it would be committed: no commit for minutes, yet progress.
    for (let i = 0; i <= 10; i++) {
      const now = T0 + i * 15_000;
      const q = {
        pendingInRam: 3,
        committed: 100,
        deliveredBeforeCommit: 20 + i * 10,
        lastCommitMonoMs: T0 - 60_000,
      };
      expect(gate.decide(at(now, { queue: q }).status, now).feed).toBe(true);
    }
  });

  it("counts a recent commit as writer progress", () => {
    const gate = new WatchdogGate(WINDOW);
    const now = T0 + 100_000;
    gate.decide(at(T0, { queue: { pendingInRam: 5, lastCommitMonoMs: T0 } }).status, T0);
    const d = gate.decide(at(now, { queue: { pendingInRam: 5, lastCommitMonoMs: now - 1_000 } }).status, now);
    expect(d.feed).toBe(true);
  });
});
