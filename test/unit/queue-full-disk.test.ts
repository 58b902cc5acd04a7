import { describe, expect, it } from "vitest";
import { commitThroughFullDisk } from "../../src/queue/full-disk.ts";

function sqliteError(code: string): Error {
  const e = new Error(code) as Error & { code: string };
  e.name = "SQLiteError";
  e.code = code;
  return e;
}

/** Steps whose attempts fail with the given codes in turn (undefined = success), recording calls. */
function steps(results: Array<string | undefined>, evictable = true) {
  const calls: string[] = [];
  let n = 0;
  return {
    calls,
    attempt: () => {
      const code = results[n++];
      calls.push(`attempt:${code ?? "ok"}`);
      if (code) throw sqliteError(code);
      return "committed";
    },
    checkpoint: () => void calls.push("checkpoint"),
    evict: () => {
      calls.push("evict");
      return evictable ? { rows: 3 } : undefined;
    },
    keep: () => void calls.push("keep"),
    undo: () => void calls.push("undo"),
  };
}

describe("A commit through a full disk", () => {
  it("commits at once when there is room", () => {
    const s = steps([undefined]);
    expect(commitThroughFullDisk(s)).toBe("committed");
    expect(s.calls).toEqual(["attempt:ok"]);
  });

  it("checkpoints the WAL before it evicts anything", () => {
    const s = steps(["SQLITE_FULL", undefined]);
    expect(commitThroughFullDisk(s)).toBe("committed");
    expect(s.calls).toEqual(["attempt:SQLITE_FULL", "checkpoint", "attempt:ok"]);
  });

  it("keeps an eviction only when the commit it was made for succeeds", () => {
    const s = steps(["SQLITE_FULL", "SQLITE_FULL", undefined]);
    expect(commitThroughFullDisk(s)).toBe("committed");
    expect(s.calls).toEqual([
      "attempt:SQLITE_FULL",
      "checkpoint",
      "attempt:SQLITE_FULL",
      "evict",
      "attempt:ok",
      "keep",
    ]);
  });

  it("undoes the eviction when the retry still fails: never both evict and refuse", () => {
    const s = steps(["SQLITE_FULL", "SQLITE_FULL", "SQLITE_FULL"]);
    expect(() => commitThroughFullDisk(s)).toThrow("SQLITE_FULL");
    expect(s.calls.slice(-2)).toEqual(["attempt:SQLITE_FULL", "undo"]);
    expect(s.calls).not.toContain("keep");
  });

  it("fails with the original error when nothing may be evicted", () => {
    const s = steps(["SQLITE_FULL", "SQLITE_FULL"], false);
    expect(() => commitThroughFullDisk(s)).toThrow("SQLITE_FULL");
    expect(s.calls.at(-1)).toBe("evict");
  });

  it("does not checkpoint or evict for other errors (I/O, read-only)", () => {
    const s = steps(["SQLITE_IOERR"]);
    expect(() => commitThroughFullDisk(s)).toThrow("SQLITE_IOERR");
    expect(s.calls).toEqual(["attempt:SQLITE_IOERR"]);
  });
});
