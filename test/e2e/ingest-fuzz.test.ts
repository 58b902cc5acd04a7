/**
 * Issue #12: a seeded, bounded fuzz test of the ingest API of the compiled binary, with real
 * mosquitto. Random bodies (valid, almost valid, garbage, invalid UTF-8, NDJSON), random headers
 * (content types, Origin, Host, junk) and random names (stream and value names from every corner
 * of Unicode) are posted. It proves:
 *   - the process never dies and never answers 5xx;
 *   - every reading acknowledged with 201 reaches the broker on the right topic with exactly the
 *     values sent (same JSON), under the seq it was given;
 *   - nothing refused is published (every published seq was acknowledged).
 *
 * FIELDRELAY_FUZZ_CASES sets the size (default 10 000, the CI size); FIELDRELAY_FUZZ_SEED the seed.
 */
import mqtt from "mqtt";
import { describe, expect, it } from "vitest";
import { seededRandom } from "../../src/sensors/simulated/model.ts";
import { DeviceRun } from "../support/device.ts";
import { binaryMissing, type Flavor } from "../support/fieldrelay.ts";
import { MOSQUITTO, missing } from "../support/tools.ts";

const flavor: Flavor = "x64";
const skip = binaryMissing(flavor) ?? missing(MOSQUITTO);
const CASES = Number(process.env.FIELDRELAY_FUZZ_CASES ?? 10_000);
const SEED = Number(process.env.FIELDRELAY_FUZZ_SEED ?? 12);
const CONCURRENCY = 16;

/** mulberry32 (the simulated sensors' seeded generator): small, seeded, good enough to pick cases. */
const prng = seededRandom;

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)] as T;

/** One code point from a class that matters to MQTT's and JSON's string rules. */
function codePoint(r: Rand): string {
  switch (int(r, 12)) {
    case 0:
      return String.fromCharCode(int(r, 0x20)); // C0 controls, NUL
    case 1:
      return String.fromCharCode(0x7f + int(r, 0x21)); // DEL, C1 controls
    case 2:
      return pick(r, ["+", "#", "/", "$", " ", "\\", '"', "'", "%", ".", "-", "_"]);
    case 3:
      return String.fromCharCode(0xfdd0 + int(r, 0x20)); // non-characters
    case 4:
      return pick(r, ["\ufffe", "\uffff", "\u{1fffe}", "\u{10ffff}"]);
    case 5:
      return String.fromCharCode(0xd800 + int(r, 0x800)); // a lone surrogate
    case 6:
      return String.fromCodePoint(0x1f300 + int(r, 0x300)); // emoji (astral)
    case 7:
      return String.fromCharCode(0xa0 + int(r, 0xd800 - 0xa0)); // BMP
    default:
      return pick(r, [..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"]);
  }
}

function name(r: Rand): string {
  const roll = r();
  if (roll < 0.7) return `s${int(r, 5)}`;
  if (roll < 0.74) return pick(r, ["status", "clock", "cmd", "", "x".repeat(129), "x".repeat(128)]);
  let s = "";
  const n = 1 + int(r, 12);
  for (let i = 0; i < n; i++) s += codePoint(r);
  return s;
}

function value(r: Rand): unknown {
  switch (int(r, 30)) {
    case 0:
      return int(r, 2) === 0;
    case 1:
      return (r() - 0.5) * 10 ** int(r, 30);
    case 2:
      return pick(r, [9007199254740991, -9007199254740991, 2 ** 53, 2 ** 60, 1e300, 0, -0]);
    case 3:
    case 7:
    case 8:
      return name(r);
    case 4:
      return pick(r, [null, [], {}, [1], { a: 1 }]);
    case 5:
      return "y".repeat(int(r, 2) === 0 ? 1024 : 1025);
    default:
      return int(r, 1_000_000) - 500_000;
  }
}

function valueName(r: Rand): string {
  return r() < 0.95 ? pick(r, ["temperature_c", "humidity_pct", "v", "count", "_x"]) : name(r);
}

function reading(r: Rand): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  const n = int(r, 4);
  for (let i = 0; i < n || (i === 0 && r() < 0.9); i++) values[valueName(r)] = value(r);
  const out: Record<string, unknown> = { stream: name(r), values };
  if (r() < 0.2) out.priority = pick(r, [1, 5, 10, 1, 5, 10, 0, 11, 2.5, "5"]);
  if (r() < 0.2) out.qos = pick(r, [0, 1, 2, 0, 1, 2, 3, "1"]);
  if (r() < 0.1) out.ts = pick(r, [new Date().toISOString(), "2020-01-01T00:00:00Z", "yesterday"]);
  if (r() < 0.02) out.extra = 1;
  return out;
}

interface Case {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Uint8Array | undefined;
  /** The readings in the body, in order, when it is well-formed JSON/NDJSON. */
  readings: Array<Record<string, unknown>> | undefined;
  /** A 201 would be wrong for this request whatever the body (browser-like or misaddressed). */
  mustRefuse: boolean;
}

function fuzzCase(r: Rand, port: number): Case {
  const headers: Record<string, string> = {};
  let mustRefuse = false;
  const ct = pick(r, [
    "application/json",
    "application/json",
    "application/json",
    "application/json",
    "application/json",
    "application/x-ndjson",
    "application/x-ndjson",
    "Application/JSON; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "",
  ]);
  if (ct !== "") headers["content-type"] = ct;
  const base = ct.split(";")[0]!.trim().toLowerCase();
  if (base !== "application/json" && base !== "application/x-ndjson") mustRefuse = true;
  if (r() < 0.05) {
    headers.origin = pick(r, ["http://evil.example", "null", `http://127.0.0.1:${port}`]);
    mustRefuse = true;
  }
  if (r() < 0.05) {
    headers.host = pick(r, ["evil.example", "127.0.0.1.nip.io", "localhost", `[::1]:${port}`]);
    if (headers.host.includes("evil") || headers.host.includes("nip")) mustRefuse = true;
  }
  for (let i = int(r, 3); i > 0; i--) headers[`x-fuzz-${int(r, 1000)}`] = String(r()).slice(0, int(r, 40));
  const method = r() < 0.95 ? "POST" : pick(r, ["GET", "PUT", "DELETE", "PATCH"]);
  const path = r() < 0.97 ? "/v1/readings" : pick(r, ["/", "/v1/readings/", "/v1/readings?x=1", "/health"]);
  if (method !== "POST" || path.split("?")[0] !== "/v1/readings") mustRefuse = true;
  let readings: Array<Record<string, unknown>> | undefined;
  let body: Uint8Array | undefined;
  const kind = r();
  if (kind < 0.7) {
    readings = Array.from({ length: 1 + (r() < 0.2 ? int(r, 4) : 0) }, () => reading(r));
    body = new TextEncoder().encode(readings.map((x) => JSON.stringify(x)).join("\n"));
  } else if (kind < 0.8) {
    body = new TextEncoder().encode(JSON.stringify(reading(r)).slice(0, -1 - int(r, 10))); // truncated
  } else if (kind < 0.9) {
    body = new Uint8Array(int(r, 200)).map(() => int(r, 256)); // random bytes, often invalid UTF-8
  } else {
    body = new TextEncoder().encode(pick(r, ["", "\n\n", "[]", "null", "{}", '{"stream":"s"}', "1"]));
  }
  return { method, path, headers, body: method === "GET" ? undefined : body, readings, mustRefuse };
}

describe.skipIf(skip)(`ingest fuzz (${CASES} seeded cases, seed ${SEED})`, () => {
  const device = new DeviceRun("fr-fuzz-", flavor);

  it("never dies, never answers 5xx, delivers every 201 reading exactly, publishes nothing refused", async () => {
    const broker = await device.startBroker();
    const config = await device.writeConfig({
      id: "pi-fuzz",
      mqtt: { max_inflight: 256 },
      commitIntervalMs: 5,
      health: false,
    });
    const port = config.ingestPort;
    const published = new Map<number, { topic: string; stream: string; values: string }>();
    const strangers: string[] = [];
    const sub = await mqtt.connectAsync(broker.url, { clientId: "fuzz-sub", reconnectPeriod: 0 });
    await sub.subscribeAsync("#", { qos: 1 });
    sub.on("message", (topic, payload) => {
      // The device's own topics: its status and its clock messages (#13), never readings.
      if (topic === "fieldrelay/pi-fuzz/status" || topic.startsWith("fieldrelay/pi-fuzz/clock/")) return;
      try {
        const m = JSON.parse(payload.toString()) as { seq: number; stream: string; values: unknown };
        published.set(m.seq, { topic, stream: m.stream, values: JSON.stringify(m.values) });
      } catch {
        strangers.push(topic);
      }
    });
    const p = device.run(config.path);
    await p.waitForLog((l) => l.msg === "fieldrelay ready");

    const rand = prng(SEED);
    const cases = Array.from({ length: CASES }, () => fuzzCase(rand, port));
    const accepted = new Map<number, Record<string, unknown>>();
    const statuses: Record<number, number> = {};
    const failures: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++]!;
        const init: RequestInit = { method: c.method, headers: c.headers };
        if (c.body !== undefined) init.body = c.body;
        const res = await fetch(`http://127.0.0.1:${port}${c.path}`, init);
        const text = await res.text();
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        if (res.status >= 500) failures.push(`${res.status} for ${JSON.stringify(c).slice(0, 300)}: ${text}`);
        if (res.status !== 201) continue;
        if (c.mustRefuse)
          failures.push(`201 for a request that must be refused: ${JSON.stringify(c.headers)}`);
        const seqs = (JSON.parse(text) as { seqs: number[] }).seqs;
        if (!c.readings || seqs.length !== c.readings.length) {
          failures.push(`201 with ${seqs.length} seqs for ${c.readings?.length ?? "no"} readings`);
          continue;
        }
        for (const [i, seq] of seqs.entries()) accepted.set(seq, c.readings[i]!);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect(failures.slice(0, 5)).toEqual([]);
    expect(p.proc.exitCode).toBeNull();

    const deadline = Date.now() + 60_000;
    while ([...accepted.keys()].some((seq) => !published.has(seq)) && Date.now() < deadline)
      await Bun.sleep(100);
    p.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    await sub.endAsync();

    const wrong: string[] = [];
    for (const [seq, sent] of accepted) {
      const got = published.get(seq);
      if (!got) wrong.push(`seq ${seq} never published`);
      else if (got.topic !== `fieldrelay/pi-fuzz/${sent.stream}` || got.stream !== sent.stream)
        wrong.push(`seq ${seq} on ${JSON.stringify(got.topic)}, sent stream ${JSON.stringify(sent.stream)}`);
      else if (got.values !== JSON.stringify(sent.values))
        wrong.push(`seq ${seq} values ${got.values}, sent ${JSON.stringify(sent.values)}`);
    }
    const unacknowledged = [...published.keys()].filter((seq) => !accepted.has(seq));
    console.log(
      `fuzz: ${CASES} cases (seed ${SEED}), statuses ${JSON.stringify(statuses)}, ${accepted.size} readings acknowledged and delivered`,
    );
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(unacknowledged).toEqual([]);
    expect(strangers).toEqual([]);
    expect(accepted.size).toBeGreaterThan(CASES / 10); // the generator does produce valid readings
  });
});
