/**
 * The write-behind commit decision, as a pure function. Readings wait in RAM at most
 * `commitIntervalMs` (measured from the oldest waiting one, in monotonic ms) or until
 * `commitMaxRows` are waiting; other pending work (deletes of acked rows, inflight flags) rides
 * along and, alone, waits one interval from when it first appeared. 0 ms means commit now.
 */

export interface CommitState {
  pendingRows: number;
  /** monoMs when the oldest waiting reading was captured. */
  oldestRowMonoMs: number | undefined;
  /** Deletes and inflight flags waiting for the next transaction. */
  pendingOps: number;
  oldestOpMonoMs: number | undefined;
}

export type CommitDecision = { kind: "idle" } | { kind: "now" } | { kind: "wait"; ms: number };

export function commitDecision(
  state: CommitState,
  nowMonoMs: number,
  commitIntervalMs: number,
  commitMaxRows: number,
): CommitDecision {
  if (state.pendingRows === 0 && state.pendingOps === 0) return { kind: "idle" };
  if (state.pendingRows >= commitMaxRows) return { kind: "now" };
  const starts: number[] = [];
  if (state.pendingRows > 0 && state.oldestRowMonoMs !== undefined) starts.push(state.oldestRowMonoMs);
  if (state.pendingOps > 0 && state.oldestOpMonoMs !== undefined) starts.push(state.oldestOpMonoMs);
  const oldest = starts.length > 0 ? Math.min(...starts) : nowMonoMs;
  const wait = oldest + commitIntervalMs - nowMonoMs;
  return wait <= 0 ? { kind: "now" } : { kind: "wait", ms: wait };
}
