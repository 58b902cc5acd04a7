/**
 * The eviction choice, as a pure function. When the queue is over its row, byte or free-disk
 * budget it removes the lowest priority first and the oldest (lowest seq) within it. Priorities at
 * or above `protectedPriority` are never evicted. The incoming reading takes part: it is the
 * newest row of its priority, so if the budget can only be met by evicting it (everything that
 * would go first is already gone, or only protected rows remain) it is refused instead — and
 * nothing else is evicted for it, since evicting older rows and then refusing would lose data
 * for nothing. A protected incoming reading is always accepted, even over budget: the runtime
 * reports that state as unhealthy (QueueStats.refusing).
 *
 * Row counts are exact; bytes are estimated from each class's average row size. The caller
 * deletes the oldest `rows` of each listed priority, re-measures, and asks again if the estimate
 * fell short.
 */

export interface PriorityClass {
  priority: number;
  rows: number;
  /** Payload bytes of all rows of this priority. */
  bytes: number;
}

/** How many rows and bytes must go (≤ 0 means that budget is met). */
export interface EvictionNeed {
  rows: number;
  bytes: number;
}

export type EvictionChoice =
  | { accept: true; evict: Array<{ priority: number; rows: number }>; shortfall: boolean }
  | { accept: false; detail: string };

export function chooseEvictions(
  classes: readonly PriorityClass[],
  need: EvictionNeed,
  protectedPriority: number,
  incoming?: { priority: number },
): EvictionChoice {
  let needRows = Math.max(0, need.rows);
  let needBytes = Math.max(0, need.bytes);
  if (needRows === 0 && needBytes === 0) return { accept: true, evict: [], shortfall: false };
  const incomingEvictable = incoming !== undefined && incoming.priority < protectedPriority;
  const evictable = classes
    .filter((c) => c.priority < protectedPriority && c.rows > 0)
    .sort((a, b) => a.priority - b.priority);
  const evict: Array<{ priority: number; rows: number }> = [];
  for (const c of evictable) {
    if (incomingEvictable && c.priority > incoming.priority) break;
    const average = c.bytes / c.rows;
    const forBytes = needBytes > 0 ? (average > 0 ? Math.ceil(needBytes / average) : c.rows) : 0;
    const rows = Math.min(c.rows, Math.max(needRows, forBytes));
    evict.push({ priority: c.priority, rows });
    needRows -= rows;
    needBytes -= rows === c.rows ? c.bytes : rows * average;
    if (needRows <= 0 && needBytes <= 0) return { accept: true, evict, shortfall: false };
  }
  if (incomingEvictable) {
    const onlyProtected = evictable.length === 0;
    return {
      accept: false,
      detail: onlyProtected
        ? `queue over budget and only priorities ≥ ${protectedPriority} (protected) remain`
        : `queue over budget and no reading of priority ≤ ${incoming.priority} is left to evict`,
    };
  }
  return { accept: true, evict, shortfall: true };
}
