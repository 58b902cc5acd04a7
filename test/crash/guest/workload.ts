/**
 * The crash suite's guest-side workload, bundled into one file and run inside the emulated device
 * by the fieldrelay binary itself (BUN_BE_BUN=1 makes a compiled Bun program act as bun). It is
 * the producer and the broker around the real service under systemd:
 *
 *   - an HTTP client POSTs readings to fieldrelay's ingest endpoint (steady, in bursts, at a rate);
 *     after each 201 it marks the seqs it got on the dm-log-writes log ("a<ranges>");
 *   - an aedes broker on 127.0.0.1:1883 marks every seq it receives ("b<ranges>") and only then
 *     lets aedes send the PUBACK, so a reading deleted from the queue at a crash point was
 *     received by the broker before that point;
 *   - phases ("p<name>" marks): broker up, bursts, broker down (backlog), eviction over a small
 *     max_bytes at priority 1, a seq-block boundary, an NTP anchor save, SIGHUP, a clean restart.
 *
 * Marks are written by `dmsetup message <dev> 0 mark <text>`; one dmsetup at a time, each
 * carrying everything that accumulated while the previous one ran. Without CRASH_DM no marks are
 * written (the bench and the dm-flakey runs).
 *
 * Output: a JSON summary at CRASH_OUT.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { Aedes } from "aedes";
import { decodeReadings } from "../../../src/wire/index.ts";

const DM = process.env.CRASH_DM ?? "";
const SCALE = Number(process.env.CRASH_SCALE ?? "1");
const OUT = process.env.CRASH_OUT ?? "/run/crash/workload.json";
const MODE = process.env.CRASH_MODE ?? "log-writes";
const INGEST = "http://127.0.0.1:9107/v1/readings";
const MARK_MAX = 470; // a mark is at most sectorsize - 32 - 1 bytes; 512-byte sectors here

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
const log = (msg: string) => console.log(`CRASH workload +${((Date.now() - t0) / 1000).toFixed(1)}s ${msg}`);

function run(argv: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "inherit"] });
    child.on("close", (code) => resolve(code ?? -1));
    child.on("error", () => resolve(-1));
  });
}

function ranges(seqs: number[]): string[] {
  const sorted = [...new Set(seqs)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts;
}

/**
 * `dmsetup message <dm> 0 mark <text>` without a process: the DM_TARGET_MSG ioctl on
 * /dev/mapper/control (linux/dm-ioctl.h: struct dm_ioctl is 312 bytes — version[3] at 0,
 * data_size 12, data_start 16, name[128] at 48 — followed by struct dm_target_msg { u64 sector;
 * char message[]; }). Spawning dmsetup under emulation costs about a second per mark.
 */
const DM_TARGET_MSG = 0xc138fd0e;
const DM_IOCTL_SIZE = 312;
let dmControl: { fd: number; ioctl: (fd: number, req: number, arg: Uint8Array) => number } | undefined;

function dmMessage(name: string, message: string): boolean {
  if (!dmControl) {
    const { dlopen, FFIType } = require("bun:ffi") as typeof import("bun:ffi");
    const lib = dlopen("libc.so.6", {
      open: { args: [FFIType.cstring, FFIType.i32], returns: FFIType.i32 },
      ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
    });
    const fd = lib.symbols.open(Buffer.from("/dev/mapper/control\0") as never, 2);
    if (fd < 0) return false;
    dmControl = { fd, ioctl: (f, r, a) => lib.symbols.ioctl(f, r, a as never) as number };
  }
  const text = Buffer.from(`${message}\0`);
  const buf = new Uint8Array(DM_IOCTL_SIZE + 8 + text.length);
  const view = new DataView(buf.buffer);
  view.setUint32(0, 4, true); // DM_VERSION_MAJOR; minor and patch 0: any 4.x kernel
  view.setUint32(12, buf.length, true);
  view.setUint32(16, DM_IOCTL_SIZE, true);
  buf.set(Buffer.from(name), 48);
  buf.set(text, DM_IOCTL_SIZE + 8); // sector 0, then the message
  return dmControl.ioctl(dmControl.fd, DM_TARGET_MSG, buf) === 0;
}

/** Serialises marks: one dmsetup at a time, batching whatever queued up meanwhile. */
class Marker {
  private acks: number[] = [];
  private received: number[] = [];
  private phases: string[] = [];
  private waiters: Array<() => void> = [];
  private busy = false;
  marks = 0;
  failures = 0;

  ack(seqs: number[]): void {
    this.acks.push(...seqs);
    void this.kick();
  }

  /** Resolves once the seqs are on the log. */
  broker(seqs: number[]): Promise<void> {
    if (!DM) return Promise.resolve();
    this.received.push(...seqs);
    const done = new Promise<void>((r) => this.waiters.push(r));
    void this.kick();
    return done;
  }

  phase(name: string): Promise<void> {
    log(`phase ${name}`);
    this.phases.push(name);
    const done = new Promise<void>((r) => this.waiters.push(r));
    void this.kick();
    return done;
  }

  async idle(): Promise<void> {
    while (this.busy || this.acks.length || this.received.length || this.phases.length) await sleep(20);
  }

  private async kick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.acks.length || this.received.length || this.phases.length) {
        const parts = [
          ...this.phases.map((p) => `p${p}`),
          ...(this.received.length ? [`b${ranges(this.received).join(",")}`] : []),
          ...(this.acks.length ? [`a${ranges(this.acks).join(",")}`] : []),
        ];
        const waiters = this.waiters;
        this.phases = [];
        this.received = [];
        this.acks = [];
        this.waiters = [];
        if (DM) {
          for (const text of splitMarks(parts)) {
            const ok =
              dmMessage(DM, `mark ${text}`) ||
              (await run(["dmsetup", "message", DM, "0", "mark", text])) === 0;
            this.marks++;
            if (!ok) this.failures++;
          }
        }
        for (const w of waiters) w();
      }
    } finally {
      this.busy = false;
    }
  }
}

/** Packs "x<ranges>" parts into marks of at most MARK_MAX bytes, splitting long range lists. */
function splitMarks(parts: string[]): string[] {
  const pieces: string[] = [];
  for (const part of parts) {
    if (part.length <= MARK_MAX) {
      pieces.push(part);
      continue;
    }
    const tag = part[0]!;
    let cur = tag;
    for (const r of part.slice(1).split(",")) {
      if (cur.length + r.length + 1 > MARK_MAX) {
        pieces.push(cur);
        cur = tag;
      }
      cur += cur.length > 1 ? `,${r}` : r;
    }
    if (cur.length > 1) pieces.push(cur);
  }
  const marks: string[] = [];
  let cur = "";
  for (const p of pieces) {
    if (cur && cur.length + 1 + p.length > MARK_MAX) {
      marks.push(cur);
      cur = "";
    }
    cur = cur ? `${cur};${p}` : p;
  }
  if (cur) marks.push(cur);
  return marks;
}

const marker = new Marker();

/** The seqs in a published payload: fieldrelay's own decoder (single envelope or batch). */
function seqsOf(payload: Buffer | string, contentType?: string): number[] {
  const bytes = typeof payload === "string" ? Buffer.from(payload) : payload;
  try {
    return decodeReadings(new Uint8Array(bytes), contentType).map((r) => r.seq);
  } catch {
    return [...bytes.toString("utf8").matchAll(/"seq"\s*:\s*(\d+)/g)].map((m) => Number(m[1]));
  }
}

class Broker {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  received = 0;
  private constructor(private readonly aedes: Aedes) {}

  static async start(): Promise<Broker> {
    let self: Broker | undefined;
    const aedes = await Aedes.createBroker({
      authorizePublish: (_client, packet, callback) => {
        const contentType = (packet as { properties?: { contentType?: string } }).properties?.contentType;
        const seqs = /\/(status|clock)(\/|$)/.test(packet.topic) ? [] : seqsOf(packet.payload, contentType);
        if (self) self.received += seqs.length;
        stats.brokerSeqs.push(...seqs);
        if (seqs.length === 0) return callback(null);
        marker.broker(seqs).then(() => callback(null));
      },
    });
    self = new Broker(aedes);
    await self.up();
    return self;
  }

  up(): Promise<void> {
    if (this.server) return Promise.resolve();
    const server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
      this.aedes.handle(socket);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(1883, "127.0.0.1", () => resolve());
    });
  }

  async down(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

interface Stats {
  sent: number;
  acked: number;
  refused: number;
  errors: number;
  evictable: number[];
  highSeq: number;
  ackedSeqs: number[];
  brokerSeqs: number[];
}
const stats: Stats = {
  sent: 0,
  acked: 0,
  refused: 0,
  errors: 0,
  evictable: [],
  highSeq: 0,
  ackedSeqs: [],
  brokerSeqs: [],
};

let counter = 0;
function reading(priority: number): string {
  counter++;
  return JSON.stringify({
    stream: "crash",
    values: { n: counter, temperature_c: 20 + (counter % 50) / 10 },
    priority,
  });
}

/** POST one body of `n` readings; resolves when answered (201 → marked, else counted). */
async function post(n: number, priority = 5): Promise<boolean> {
  const body = Array.from({ length: n }, () => reading(priority)).join("\n");
  stats.sent += n;
  try {
    const res = await fetch(INGEST, {
      method: "POST",
      body,
      headers: { "content-type": "application/x-ndjson" },
    });
    const json = (await res.json().catch(() => ({}))) as { seqs?: number[] };
    if (res.status === 201 && json.seqs) {
      stats.acked += json.seqs.length;
      for (const s of json.seqs) stats.highSeq = Math.max(stats.highSeq, s);
      if (priority === 1) stats.evictable.push(...json.seqs);
      stats.ackedSeqs.push(...json.seqs);
      marker.ack(json.seqs);
      return true;
    }
    stats.refused += n;
    if (stats.refused === n || stats.refused % 1000 < n)
      log(`refused: ${res.status} ${JSON.stringify(json)}`);
    // Readings refused with 503 may still be stored; never count them as acknowledged, but a
    // priority-1 one may also be evicted later: it owes nothing either way.
    return false;
  } catch {
    stats.errors += n;
    await sleep(100);
    return false;
  }
}

/** Sequential requests for `seconds`: `perRequest` readings each, `gapMs` apart. */
async function steady(seconds: number, perRequest = 1, gapMs = 30, priority = 5): Promise<void> {
  const end = Date.now() + seconds * 1000 * SCALE;
  while (Date.now() < end) {
    await post(perRequest, priority);
    if (gapMs) await sleep(gapMs);
  }
}

/** Open-loop: a request every 1000/rate ms regardless of answers (the bench's 50 readings/s). */
async function atRate(seconds: number, ratePerS: number): Promise<void> {
  const inflight = new Set<Promise<boolean>>();
  const end = Date.now() + seconds * 1000;
  let next = Date.now();
  while (Date.now() < end) {
    const p = post(1);
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
    next += 1000 / ratePerS;
    await sleep(Math.max(0, next - Date.now()));
  }
  await Promise.all(inflight);
}

async function waitReady(): Promise<void> {
  for (let i = 0; i < 600; i++) {
    try {
      await fetch(INGEST, { method: "GET" });
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error("ingest endpoint never answered");
}

async function metric(name: string): Promise<number> {
  try {
    const text = await (await fetch("http://127.0.0.1:9108/metrics")).text();
    let sum = 0;
    for (const line of text.split("\n")) if (line.startsWith(name)) sum += Number(line.split(" ").pop());
    return sum;
  } catch {
    return Number.NaN;
  }
}

/** The crash-point workload: every path that writes. */
async function logWritesWorkload(broker: Broker): Promise<Record<string, unknown>> {
  await marker.phase("steady");
  await steady(6);
  await marker.phase("burst");
  for (let i = 0; i < 20 * SCALE; i++) await post(100);
  await marker.phase("anchor");
  await run(["touch", "/run/fieldrelay-crash-synced"]);
  await steady(3);
  await marker.phase("broker-down");
  await broker.down();
  await steady(5);
  await marker.phase("broker-up");
  await broker.up();
  await steady(5);
  await marker.phase("evict");
  await broker.down();
  // Priority 1 only: eviction takes the lowest priority first, so only these may go (the replay
  // excuses exactly these seqs). Until the budget has evicted some, and past the 4096-seq block.
  let evicted = 0;
  for (let i = 1; i <= 100; i++) {
    await post(200, 1);
    if (i % 5 === 0) evicted = await metric("fieldrelay_readings_evicted_total");
    if (evicted > 0 && stats.highSeq > 4096 + 500 && i >= 10 * SCALE) break;
  }
  await steady(2);
  await broker.up();
  await steady(4);
  await marker.phase("sighup");
  await run(["systemctl", "kill", "-s", "HUP", "fieldrelay.service"]);
  await steady(6);
  await marker.phase("restart");
  const restart = run(["systemctl", "restart", "fieldrelay.service"]);
  await steady(3);
  await restart;
  await waitReady();
  await marker.phase("steady-2");
  await steady(6, 1, 20);
  await marker.phase("drain");
  await sleep(4000);
  await marker.idle();
  return { evicted };
}

/**
 * dm-flakey: the data device fails every write for a few seconds while ingest runs. The broker is
 * down from before the fault until after it, so readings can only be captured by commits: the
 * fault hits the queue's writes (with the broker up they would be acked before any commit).
 */
async function flakeyWorkload(broker: Broker): Promise<Record<string, unknown>> {
  const acked = () => stats.acked;
  await steady(2);
  await broker.down();
  await steady(3);
  log("device failing (flakey)");
  await run(["/usr/local/lib/fieldrelay-crash/flakey", "down"]);
  let mark = acked();
  await steady(5);
  const ackedWhileFailing = acked() - mark;
  await run(["/usr/local/lib/fieldrelay-crash/flakey", "up"]);
  log("device healthy again");
  mark = acked();
  await steady(4);
  const ackedDeviceBackBrokerDown = acked() - mark;
  await broker.up();
  await steady(3);
  // The service must take readings again on its own (no restart).
  mark = acked();
  await steady(4);
  const health = await fetch("http://127.0.0.1:9108/health")
    .then((r) => r.status)
    .catch(() => 0);
  return { ackedWhileFailing, ackedDeviceBackBrokerDown, ackedAfterRecovery: acked() - mark, health };
}

/** Bench: device bytes per reading at 50 readings/s, online then offline. */
async function benchWorkload(broker: Broker): Promise<Record<string, unknown>> {
  const dev = process.env.CRASH_BENCH_DEV ?? "vdb";
  const seconds = Number(process.env.CRASH_BENCH_SECONDS ?? "20");
  const written = async () => {
    const text = await Bun.file(`/sys/block/${dev}/stat`).text();
    return Number(text.trim().split(/\s+/)[6]) * 512;
  };
  // The queue's own counters beside the device's, so a figure can be explained (what committed).
  const counters = async (): Promise<Record<string, number>> => {
    const text = await fetch("http://127.0.0.1:9108/metrics")
      .then((r) => r.text())
      .catch(() => "");
    const out: Record<string, number> = {};
    for (const name of [
      "commits_total",
      "readings_committed_total",
      "readings_delivered_before_commit_total",
    ]) {
      const m = new RegExp(`^fieldrelay_${name} (\\S+)$`, "m").exec(text);
      out[name] = m ? Number(m[1]) : Number.NaN;
    }
    return out;
  };
  const phase = async (name: string) => {
    await steady(2); // settle
    await sleep(1500);
    const a0 = stats.acked;
    const w0 = await written();
    const c0 = await counters();
    await atRate(seconds, 50);
    await sleep(1500); // the last commit
    const w1 = await written();
    const c1 = await counters();
    const readings = stats.acked - a0;
    const queue = Object.fromEntries(Object.keys(c1).map((k) => [k, (c1[k] as number) - (c0[k] as number)]));
    log(`bench ${name}: ${w1 - w0} bytes for ${readings} readings; queue ${JSON.stringify(queue)}`);
    return { readings, bytes: w1 - w0, bytesPerReading: (w1 - w0) / Math.max(readings, 1), queue };
  };
  const online = await phase("online");
  await broker.down();
  const offline = await phase("offline");
  await broker.up();
  return { online, offline, seconds, ratePerS: 50 };
}

async function main(): Promise<void> {
  const broker = await Broker.start();
  await waitReady();
  let extra: Record<string, unknown> = {};
  if (MODE === "log-writes") extra = await logWritesWorkload(broker);
  else if (MODE === "flakey") extra = await flakeyWorkload(broker);
  else if (MODE === "bench") extra = await benchWorkload(broker);
  else if (MODE === "broken") {
    // The self-check: broker down, so nothing is excused by a delivery.
    await broker.down();
    await marker.phase("broken");
    await steady(6);
    await marker.idle();
  }
  await marker.idle();
  const result = {
    mode: MODE,
    ...stats,
    evictable: ranges(stats.evictable).join(","),
    ackedSeqs: ranges(stats.ackedSeqs).join(","),
    brokerSeqs: ranges(stats.brokerSeqs).join(","),
    marks: marker.marks,
    markFailures: marker.failures,
    brokerReceived: broker.received,
    ...extra,
  };
  writeFileSync(OUT, JSON.stringify(result));
  log(
    `done: sent ${stats.sent}, acked ${stats.acked}, refused ${stats.refused}, errors ${stats.errors}, marks ${marker.marks}`,
  );
  await broker.down();
  process.exit(0);
}

main().catch((error) => {
  console.error(`CRASH workload failed: ${error instanceof Error ? error.stack : String(error)}`);
  writeFileSync(OUT, JSON.stringify({ mode: MODE, failed: String(error) }));
  process.exit(1);
});
