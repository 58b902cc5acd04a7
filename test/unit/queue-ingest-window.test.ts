import { describe, expect, it } from "vitest";
import { GATHER_EARLY, gatherDecision, refusalDetail } from "../../src/queue/ingest-window.ts";

const cfg = { commitIntervalMs: 1000, ingestCommitMs: 200 };
const state = (over: Partial<Parameters<typeof gatherDecision>[0]> = {}) => ({
  waitedMs: 0,
  withBroker: false,
  untaken: true,
  waiting: 1,
  ...over,
});

describe("Ingest gathering window", () => {
  it("waits ingest_commit_ms for a batch nobody took, then commits", () => {
    expect(gatherDecision(state(), cfg)).toEqual({ kind: "wait", ms: 200 });
    expect(gatherDecision(state({ waitedMs: 150 }), cfg)).toEqual({ kind: "wait", ms: 50 });
    expect(gatherDecision(state({ waitedMs: 200 }), cfg)).toEqual({ kind: "commit" });
  });

  it("lets a batch the broker has wait for its acks up to commit_interval_ms, looking again at the short window", () => {
    const taken = { withBroker: true, untaken: false };
    expect(gatherDecision(state({ ...taken }), cfg)).toEqual({ kind: "wait", ms: 200 });
    expect(gatherDecision(state({ ...taken, waitedMs: 200 }), cfg)).toEqual({ kind: "wait", ms: 800 });
    expect(gatherDecision(state({ ...taken, waitedMs: 1000 }), cfg)).toEqual({ kind: "commit" });
  });

  it(`commits at once when ${GATHER_EARLY} batches wait and the broker took none (offline: they share one fsync already)`, () => {
    expect(gatherDecision(state({ waiting: GATHER_EARLY }), cfg)).toEqual({ kind: "commit" });
    expect(gatherDecision(state({ waiting: GATHER_EARLY - 1 }), cfg).kind).toBe("wait");
    // Online many wait too, but the broker is taking them: their acks are worth waiting for.
    expect(gatherDecision(state({ waiting: 100, untaken: false, withBroker: true }), cfg).kind).toBe("wait");
  });

  it("never waits longer than the commit interval (ingest_commit_ms above it, or 0)", () => {
    expect(gatherDecision(state(), { commitIntervalMs: 100, ingestCommitMs: 500 })).toEqual({
      kind: "wait",
      ms: 100,
    });
    expect(gatherDecision(state(), { commitIntervalMs: 1000, ingestCommitMs: 0 })).toEqual({
      kind: "commit",
    });
  });

  it("names the seqs the broker may still deliver when a batch is refused after part of it was sent", () => {
    expect(refusalDetail("disk failed", [7, 8, 9], 0, 0)).toBe("disk failed");
    expect(refusalDetail("disk failed", [7, 8, 9], 1, 2)).toBe(
      "disk failed; but the broker was sent part of it: 1 delivered, 2 may still arrive (seqs 7–9)",
    );
  });
});
