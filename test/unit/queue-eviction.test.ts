import { describe, expect, it } from "vitest";
import { chooseEvictions, type PriorityClass } from "../../src/queue/index.ts";

/** Reference model: rows as individual items, evicted one by one in priority ASC, seq ASC order. */
function reference(
  classes: PriorityClass[],
  need: { rows: number; bytes: number },
  protectedPriority: number,
  incoming?: number,
): { accept: boolean; evicted: Record<number, number> } {
  const items: Array<{ priority: number; bytes: number; incoming: boolean }> = [];
  for (const c of [...classes].sort((a, b) => a.priority - b.priority)) {
    for (let i = 0; i < c.rows; i++)
      items.push({ priority: c.priority, bytes: c.bytes / c.rows, incoming: false });
    if (incoming === c.priority) items.push({ priority: c.priority, bytes: 0, incoming: true });
  }
  if (incoming !== undefined && !classes.some((c) => c.priority === incoming)) {
    items.push({ priority: incoming, bytes: 0, incoming: true });
    items.sort((a, b) => a.priority - b.priority);
  }
  let rows = need.rows;
  let bytes = need.bytes;
  const evicted: Record<number, number> = {};
  for (const item of items) {
    if (rows <= 0 && bytes <= 0) break;
    if (item.priority >= protectedPriority) break;
    if (item.incoming) return { accept: false, evicted: {} };
    evicted[item.priority] = (evicted[item.priority] ?? 0) + 1;
    rows--;
    bytes -= item.bytes;
  }
  return { accept: true, evicted };
}

describe("Queue eviction choice", () => {
  it("evicts lowest priority first, oldest within it, never protected, and refuses when only protected remain — exhaustively", () => {
    let cases = 0;
    const priorities = [1, 2, 3, 4];
    // Every combination of 0..2 rows at each of 4 priorities, 10 bytes per row.
    for (let mask = 0; mask < 3 ** priorities.length; mask++) {
      const classes: PriorityClass[] = [];
      let m = mask;
      for (const p of priorities) {
        const rows = m % 3;
        m = Math.floor(m / 3);
        if (rows > 0) classes.push({ priority: p, rows, bytes: rows * 10 });
      }
      for (const protectedPriority of [1, 2, 3, 4, 5]) {
        for (const incoming of [undefined, 1, 2, 3, 4, 5]) {
          for (const needRows of [0, 1, 2, 3, 5, 9]) {
            for (const needBytes of [0, 10, 25]) {
              const need = { rows: needRows, bytes: needBytes };
              const got = chooseEvictions(
                classes,
                need,
                protectedPriority,
                incoming === undefined ? undefined : { priority: incoming },
              );
              const want = reference(classes, need, protectedPriority, incoming);
              cases++;
              expect(got.accept, JSON.stringify({ classes, need, protectedPriority, incoming })).toBe(
                want.accept,
              );
              if (got.accept) {
                const evicted: Record<number, number> = {};
                for (const e of got.evict) evicted[e.priority] = e.rows;
                expect(evicted).toEqual(want.evicted);
                for (const e of got.evict) expect(e.priority).toBeLessThan(protectedPriority);
              }
            }
          }
        }
      }
    }
    expect(cases).toBeGreaterThan(10_000);
  });

  it("accepts with nothing evicted when within budget", () => {
    expect(
      chooseEvictions([{ priority: 1, rows: 5, bytes: 50 }], { rows: 0, bytes: -3 }, 9, { priority: 1 }),
    ).toEqual({
      accept: true,
      evict: [],
      shortfall: false,
    });
  });

  it("refuses a low-priority reading when only protected rows remain, naming why", () => {
    const got = chooseEvictions([{ priority: 9, rows: 100, bytes: 1000 }], { rows: 1, bytes: 0 }, 9, {
      priority: 3,
    });
    expect(got).toEqual({
      accept: false,
      detail: expect.stringContaining("only priorities ≥ 9 (protected) remain"),
    });
  });

  it("accepts a protected reading over budget, reporting the shortfall", () => {
    const got = chooseEvictions([{ priority: 9, rows: 100, bytes: 1000 }], { rows: 1, bytes: 0 }, 9, {
      priority: 10,
    });
    expect(got).toEqual({ accept: true, evict: [], shortfall: true });
  });

  it("estimates rows to free bytes from the class's average row size", () => {
    const got = chooseEvictions(
      [
        { priority: 2, rows: 10, bytes: 1000 },
        { priority: 1, rows: 2, bytes: 50 },
      ],
      { rows: 0, bytes: 350 },
      9,
    );
    expect(got).toEqual({
      accept: true,
      evict: [
        { priority: 1, rows: 2 },
        { priority: 2, rows: 3 },
      ],
      shortfall: false,
    });
  });
});
