import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { StatusHistory } from "../../src/health/page/history.ts";
import { CSP, escapeHtml, loginHtml, PAGE_HTML } from "../../src/health/page/layout.ts";
import { historyRow, pageHistory, ratePerS, zeroWhenMissing } from "../../src/health/page/model.ts";
import { cookieValue, createSessions, SESSION_COOKIE } from "../../src/health/page/session.ts";
import { latestValues } from "../../src/runtime/sampler.ts";
import { fakeStatus } from "../support/runtime-status.ts";

describe("Status page history ring", () => {
  it("keeps the newest capacity rows, oldest first", () => {
    const h = new StatusHistory({ capacity: 3, maxColumns: 8 });
    for (let i = 1; i <= 5; i++) h.record(i * 1000, { rows: i * 10 });
    expect(h.rows).toBe(3);
    expect(h.slice()).toEqual({ t: [3000, 4000, 5000], series: { rows: [30, 40, 50] } });
    expect(h.slice(4000).t).toEqual([4000, 5000]);
    expect(h.oldestMonoMs).toBe(3000);
  });

  it("marks a key absent from a row as missing, or zero when its absence means zero", () => {
    const h = new StatusHistory({ capacity: 4, maxColumns: 8, zeroWhenMissing });
    h.record(1, { rows: 1, "p/5": 1, "s/a/x": 2 });
    h.record(2, { rows: 0 });
    h.record(3, { rows: 2, "p/7": 2 });
    expect(h.slice().series).toEqual({
      rows: [1, 0, 2],
      "p/5": [1, 0, 0],
      "s/a/x": [2, null, null],
      "p/7": [null, null, 2],
    });
  });

  it("stays bounded: columns beyond maxColumns are ignored and counted", () => {
    const h = new StatusHistory({ capacity: 2, maxColumns: 2 });
    h.record(1, { a: 1, b: 2, c: 3 });
    h.record(2, { a: 1, b: 2, d: 3, e: Number.NaN });
    expect(h.columnCount).toBe(2);
    expect(h.ignoredKeys).toBe(3);
  });

  it("finds the newest row at or before a time", () => {
    const h = new StatusHistory({ capacity: 10, maxColumns: 4 });
    for (const t of [1000, 2000, 3000]) h.record(t, { captured: t / 100 });
    expect(h.at(2500, ["captured"])).toEqual({ t: 2000, values: { captured: 20 } });
    expect(h.at(500, ["captured"])).toBeUndefined();
  });
});

describe("Status page data", () => {
  it("records the dead-letter count when the queue has one", () => {
    const s = { ...fakeStatus(), queue: { ...fakeStatus().queue, deadLetters: 3 } };
    expect(historyRow(s).dead).toBe(3);
    expect(historyRow(fakeStatus()).dead).toBe(0); // #12 is merged: the queue always counts them
  });

  it("records queue depth by priority, totals, and numeric sensor values (booleans as 0/1)", () => {
    const s = fakeStatus({
      queue: { rows: 7, rowsByPriority: { 5: 4, 9: 3 }, captured: 100, delivered: 93 },
      sensors: [
        {
          name: "door",
          driver: "gpio_input",
          reads: 1,
          failures: 0,
          lastSuccessAgeS: 1,
          lastError: undefined,
          values: { open: true, label: "x", level: 0.5 },
        },
      ],
    });
    expect(historyRow(s)).toEqual({
      rows: 7,
      captured: 100,
      delivered: 93,
      dead: 0,
      "p/5": 4,
      "p/9": 3,
      "s/door/open": 1,
      "s/door/level": 0.5,
    });
  });

  it("turns totals into per-second rates; a counter that went back (restart) gives no rate", () => {
    expect(ratePerS([0, 2000, 4000, 6000], [10, 20, 20, 5])).toEqual([null, 5, 0, null]);
    expect(ratePerS([0, 1000], [null, 4])).toEqual([null, null]);
  });

  it("drops the row the client already has after using it for the first new rate", () => {
    const h = pageHistory(
      {
        t: [5000, 10000],
        series: { rows: [1, 2], captured: [10, 60], delivered: [0, 0], "s/a/b.c": [1, 2] },
      },
      5,
      5000,
    );
    expect(h.t).toEqual([10]);
    expect(h.rows).toEqual([2]);
    expect(h.captured_per_s).toEqual([10]);
    expect(h.sensors).toEqual({ a: { "b.c": [2] } });
  });

  it("keeps a sensor's latest value per field, other streams' fields apart", () => {
    const stamp = {
      bootId: "b",
      monoNs: 1n,
      wallMs: 1,
      tq: "unsynced" as const,
      priority: 5,
      qos: 1 as const,
    };
    const first = latestValues(undefined, [{ ...stamp, stream: "sim", values: { t: 1, h: 5 } }], "sim");
    expect(first).toEqual({ t: 1, h: 5 });
    expect(
      latestValues(
        first,
        [
          { ...stamp, stream: "sim", values: { t: 2 } },
          { ...stamp, stream: "events", values: { spike: 9 } },
        ],
        "sim",
      ),
    ).toEqual({ t: 2, h: 5, "events.spike": 9 });
  });
});

describe("Status page sessions", () => {
  let now = 1_000_000;
  const sessions = createSessions(() => now, Buffer.alloc(32, 7), 3600);
  const cookie = (v: string) => `other=1; ${SESSION_COOKIE}=${v}`;

  it("accepts the cookie it issued, until the session expires", () => {
    const v = sessions.issue();
    expect(sessions.valid(cookie(v))).toBe(true);
    now += 3_599_000;
    expect(sessions.valid(cookie(v))).toBe(true);
    now += 2_000;
    expect(sessions.valid(cookie(v))).toBe(false);
  });

  it("refuses a forged, altered or foreign cookie", () => {
    const v = sessions.issue();
    const [issued, mac] = v.split(".");
    expect(sessions.valid(cookie(`${Number(issued) + 100}.${mac}`))).toBe(false);
    expect(sessions.valid(cookie(`${issued}.${mac!.slice(0, -1)}A`))).toBe(false);
    expect(sessions.valid(cookie("the-token"))).toBe(false);
    expect(sessions.valid(undefined)).toBe(false);
    const other = createSessions(() => now, Buffer.alloc(32, 8), 3600);
    expect(other.valid(cookie(v))).toBe(false);
  });

  it("sets an HttpOnly, SameSite=Strict cookie and clears it on sign-out", () => {
    expect(sessions.setCookie("1.x")).toBe(
      `${SESSION_COOKIE}=1.x; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600`,
    );
    expect(sessions.setCookie(undefined)).toMatch(/Max-Age=0$/);
    expect(cookieValue("a=1; b = 2", "b")).toBe("2");
  });
});

describe("Status page document", () => {
  const hash = (s: string) => `'sha256-${createHash("sha256").update(s).digest("base64")}'`;

  it("is one self-contained document: nothing loaded from elsewhere, every inline script and style allowed by hash", () => {
    expect(PAGE_HTML).not.toMatch(/\b(src|href)="(https?:)?\/\//);
    expect(PAGE_HTML).not.toMatch(/@import|url\(\s*["']?https?:/);
    const scripts = [...PAGE_HTML.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    const styles = [...PAGE_HTML.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]!);
    expect(scripts).toHaveLength(2);
    expect(scripts[0]).toContain("uPlot");
    for (const s of scripts) expect(CSP).toContain(hash(s));
    for (const s of styles) expect(CSP).toContain(hash(s));
    expect(CSP).toContain("default-src 'none'");
    expect(CSP).not.toContain("unsafe-inline");
    // the page and its plotting library stay small
    expect(Buffer.byteLength(PAGE_HTML)).toBeLessThan(150_000);
  });

  it("escapes what it puts into the sign-in form", () => {
    expect(loginHtml('<img src=x onerror="alert(1)">')).not.toContain("<img");
    expect(escapeHtml(`&<>"'`)).toBe("&amp;&lt;&gt;&quot;&#39;");
  });
});
