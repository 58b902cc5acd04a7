import { describe, expect, it } from "vitest";
import { commitDecision } from "../../src/queue/index.ts";

const idle = { pendingRows: 0, oldestRowMonoMs: undefined, pendingOps: 0, oldestOpMonoMs: undefined };

describe("Queue write-behind commit decision", () => {
  it("is idle with nothing waiting", () => {
    expect(commitDecision(idle, 5000, 1000, 100)).toEqual({ kind: "idle" });
  });

  it("waits until the oldest waiting reading is commit_interval_ms old", () => {
    expect(commitDecision({ ...idle, pendingRows: 3, oldestRowMonoMs: 4600 }, 5000, 1000, 100)).toEqual({
      kind: "wait",
      ms: 600,
    });
    expect(commitDecision({ ...idle, pendingRows: 3, oldestRowMonoMs: 4000 }, 5000, 1000, 100)).toEqual({
      kind: "now",
    });
  });

  it("commits at once when commit_max_rows are waiting", () => {
    expect(commitDecision({ ...idle, pendingRows: 100, oldestRowMonoMs: 5000 }, 5000, 1000, 100)).toEqual({
      kind: "now",
    });
  });

  it("commits every reading at once when commit_interval_ms is 0", () => {
    expect(commitDecision({ ...idle, pendingRows: 1, oldestRowMonoMs: 5000 }, 5000, 0, 100)).toEqual({
      kind: "now",
    });
  });

  it("lets deletes and inflight flags alone wait one interval from the first", () => {
    expect(commitDecision({ ...idle, pendingOps: 7, oldestOpMonoMs: 4900 }, 5000, 1000, 100)).toEqual({
      kind: "wait",
      ms: 900,
    });
  });

  it("is due by the older of readings and other work — over a grid of states", () => {
    for (const rows of [0, 1, 99, 100, 101])
      for (const ops of [0, 1, 50])
        for (const rowAge of [0, 500, 1000, 2000])
          for (const opAge of [0, 999, 1000]) {
            const d = commitDecision(
              {
                pendingRows: rows,
                oldestRowMonoMs: 10_000 - rowAge,
                pendingOps: ops,
                oldestOpMonoMs: 10_000 - opAge,
              },
              10_000,
              1000,
              100,
            );
            if (rows === 0 && ops === 0) expect(d.kind).toBe("idle");
            else {
              const age = Math.max(rows > 0 ? rowAge : -1, ops > 0 ? opAge : -1);
              const due = rows >= 100 || age >= 1000;
              expect(d).toEqual(due ? { kind: "now" } : { kind: "wait", ms: 1000 - age });
            }
          }
  });
});
