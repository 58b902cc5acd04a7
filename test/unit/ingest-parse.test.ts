import { describe, expect, it } from "vitest";
import { parseReadings } from "../../src/ingest/index.ts";

const NOW = Date.parse("2026-11-25T12:00:00.000Z");
const defaults = { priority: 5, qos: 1 as const };
const parse = (body: string) => parseReadings(body, NOW, defaults);

const DEFAULTS_FOR_12 = { priority: 5, qos: 1 } as const;

describe("Ingest body parsing", () => {
  it("accepts one JSON object with defaults for priority and qos", () => {
    expect(parse('{"stream":"door","values":{"open":true,"count":3,"label":"front"}}')).toEqual({
      ok: true,
      readings: [
        { stream: "door", values: { open: true, count: 3, label: "front" }, priority: 5, qos: 1, ageMs: 0 },
      ],
    });
  });

  it("accepts NDJSON with per-line priority, qos and ts", () => {
    const r = parse(
      '{"stream":"a","values":{"x_c":1},"priority":9,"qos":2}\n\n{"stream":"b","values":{"y":2},"ts":"2026-11-25T11:59:00.000Z"}\n',
    );
    expect(r).toEqual({
      ok: true,
      readings: [
        { stream: "a", values: { x_c: 1 }, priority: 9, qos: 2, ageMs: 0 },
        { stream: "b", values: { y: 2 }, priority: 5, qos: 1, ageMs: 60_000 },
      ],
    });
  });

  it.each([
    ["", /empty body/],
    ["{not json", /bad JSON/],
    ['{"stream":"a/b","values":{"x":1}}', /stream: stream must not contain .*'\/'/],
    ['{"stream":"a+","values":{"x":1}}', /'\+'/],
    ['{"stream":"a","values":{"x":[1]}}', /values must be numbers, strings or booleans/],
    ['{"stream":"a","values":{}}', /at least one value/],
    ['{"stream":"a","values":{"x":1},"priority":11}', /priority/],
    ['{"stream":"a","values":{"x":1},"priority":0}', /priority/],
    ['{"stream":"a","values":{"x":1},"qos":3}', /qos must be 0, 1 or 2/],
    ['{"stream":"a","values":{"x":1},"ts":"yesterday"}', /ts must be an ISO-8601/],
    ['{"stream":"a","values":{"x":1},"ts":"2026-11-27T00:00:00Z"}', /not in the future/],
    ['{"stream":"a","values":{"x":1},"extra":1}', /Unrecognized key/],
    ['{"values":{"x":1}}', /stream/],
    ["[1,2]", /expected object/],
  ])("rejects %s", (body, reason) => {
    const r = parse(body);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(reason);
  });

  it("names the failing NDJSON line and accepts nothing from the body", () => {
    const r = parse('{"stream":"a","values":{"x":1}}\n{"stream":"a","values":{"x":1},"priority":99}');
    expect(r).toEqual({ ok: false, error: expect.stringMatching(/^line 2: priority/) });
  });

  it("refuses integers it cannot keep exactly (beyond 2^53 - 1) and keeps those it can (#12)", () => {
    const bad = parseReadings('{"stream":"s","values":{"count":9007199254740993}}', 0, DEFAULTS_FOR_12);
    expect(bad).toEqual({
      ok: false,
      error: expect.stringMatching(/"count": integers beyond .* send the value as a string/),
    });
    const ok = parseReadings(
      '{"stream":"s","values":{"count":9007199254740991,"big":"9007199254740993"}}',
      0,
      DEFAULTS_FOR_12,
    );
    expect(ok.ok && ok.readings[0]?.values).toEqual({ count: 9007199254740991, big: "9007199254740993" });
  });

  it.each(["status", "clock", "cmd", "a\u0085", "a\uFFFF"])("refuses the stream name %s (#12)", (stream) => {
    expect(parseReadings(`{"stream":"${stream}","values":{"v":1}}`, 0, DEFAULTS_FOR_12).ok).toBe(false);
  });
});
