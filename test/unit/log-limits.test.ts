import { describe, expect, it } from "vitest";
import { createLogger, RepeatLimiter } from "../../src/log/index.ts";

describe("RepeatLimiter", () => {
  it("lets max lines of a message through per window, then reports how many it suppressed", () => {
    let now = 0;
    const limiter = new RepeatLimiter(3, 60_000, () => now);
    const seen = Array.from({ length: 10 }, () => limiter.admit("a"));
    expect(seen).toEqual([
      0,
      0,
      0,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    expect(limiter.admit("b")).toBe(0); // other messages are not affected
    now = 60_000;
    expect(limiter.admit("a")).toBe(7);
    expect(limiter.suppressedTotal).toBe(7);
  });
});

describe("Logger", () => {
  it("rate-limits repeated warnings but never info or fatal lines, and hides URL passwords", () => {
    const lines: Array<Record<string, unknown>> = [];
    const now = 0;
    const log = createLogger({
      destination: { write: (s: string) => lines.push(JSON.parse(s)) },
      maxRepeatsPerMinute: 2,
      nowMs: () => now,
    });
    for (let i = 0; i < 5; i++) log.warn({ url: "mqtt://u:secret@h:1883" }, "broker down mqtt://u:secret@h");
    for (let i = 0; i < 5; i++) log.info("fieldrelay ready");
    log.fatal("bye");
    expect(lines.filter((l) => l.level === "warn")).toHaveLength(2);
    expect(lines.filter((l) => l.msg === "fieldrelay ready")).toHaveLength(5);
    expect(lines.at(-1)?.msg).toBe("bye");
    expect(JSON.stringify(lines)).not.toContain("secret");
    expect(lines[0]).toMatchObject({
      url: "mqtt://u:[redacted]@h:1883",
      msg: "broker down mqtt://u:[redacted]@h",
    });
  });
});
