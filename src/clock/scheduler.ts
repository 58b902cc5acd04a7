/**
 * Scheduler is setTimeout behind an interface: the one source of timers for the queue's commit
 * deadlines and the publisher's backoff, rate limit and stop deadline, injected so tests drive
 * time by hand and never sleep.
 */
export interface Scheduler {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realScheduler: Scheduler = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
