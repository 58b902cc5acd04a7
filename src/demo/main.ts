/**
 * The zero-setup demo (`npm start`): simulated sensors → queue → MQTT, against an embedded broker
 * unless --broker URL is given, with a live one-line status. `--outage S` (npm run demo:outage)
 * takes the embedded broker down for S seconds mid-run, shows the queue filling and draining, and
 * ends by printing how many captured readings a subscriber never received (it must be 0).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import mqtt from "mqtt";
import { validateConfig } from "../config/index.ts";
import { createLogger } from "../log/index.ts";
import { startRuntime } from "../runtime/index.ts";
import { EmbeddedBroker } from "./broker.ts";

const seconds = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError("expected a number of seconds");
  return n;
};

const program = new Command("fieldrelay-demo")
  .option("--broker <url>", "publish to this broker instead of the embedded one")
  .option(
    "--outage <seconds>",
    "take the embedded broker down for this long, then verify nothing was lost",
    seconds,
  )
  .option(
    "--duration <seconds>",
    "stop after this long (default: run until Ctrl-C; with --outage: outage + 20 s)",
    seconds,
  )
  .option("--rate <per-second>", "readings per second across the simulated sensors", seconds, 20)
  .parse();
const opts = program.opts<{ broker?: string; outage?: number; duration?: number; rate: number }>();
if (opts.outage !== undefined && opts.broker)
  program.error("--outage needs the embedded broker; drop --broker");

const dir = mkdtempSync(join(tmpdir(), "fieldrelay-demo-"));
const broker = opts.broker ? undefined : await EmbeddedBroker.start();
const url = opts.broker ?? broker!.url;
const deviceId = "demo-pi";
const profiles = ["sensor", "camera", "gateway", "controller"] as const;
const config = validateConfig(
  {
    device: { id: deviceId },
    mqtt: { url, min_backoff_s: 0.5, max_backoff_s: 2, stable_after_s: 5 },
    queue: { path: join(dir, "queue.db"), commit_interval_ms: 1000 },
    ingest: { listen: "" },
    health: { listen: "" },
    clock: { sync_source: "adjtimex" },
    rtc: { mode: "none" },
    log: { level: "warn" },
    sensor: profiles.map((profile) => ({
      name: `sim-${profile}`,
      driver: "simulated",
      profile,
      stream: profile,
      interval_s: profiles.length / opts.rate,
    })),
  },
  "(demo config)",
);

// A persistent subscriber counts distinct seqs; it survives the embedded outage through its session.
const received = new Set<number>();
const subscriber = await mqtt.connectAsync(url, {
  clientId: "demo-counter",
  clean: false,
  reconnectPeriod: 500,
});
await subscriber.subscribeAsync(`${config.mqtt.topic_prefix}/${deviceId}/+`, { qos: 1 });
subscriber.on("message", (topic, payload) => {
  if (topic.endsWith("/status")) return;
  const seq = (JSON.parse(payload.toString()) as { seq?: number }).seq;
  if (typeof seq === "number") received.add(seq);
});

const log = createLogger({ format: "pretty", level: "warn" });
const runtime = await startRuntime({ config, log });
const tty = process.stdout.isTTY;
let last = { delivered: 0, at: performance.now() };
const line = (note = "") => {
  const s = runtime.status();
  const now = performance.now();
  const rate = ((s.queue.delivered - last.delivered) * 1000) / Math.max(1, now - last.at);
  last = { delivered: s.queue.delivered, at: now };
  const text = `captured ${s.queue.captured} | queued ${s.queue.rows} | inflight ${s.publisher.inflight} | delivered ${s.queue.delivered} | ${rate.toFixed(0)}/s | broker ${s.publisher.connected ? "up" : "down"}${note}`;
  process.stdout.write(tty ? `\r\x1b[K${text}` : `${text}\n`);
};
const ticker = setInterval(line, 1000);

let finished = false;
async function finish(code: number, message?: string): Promise<never> {
  if (finished) process.exit(code);
  finished = true;
  clearInterval(ticker);
  await runtime.stop();
  await subscriber.endAsync();
  await broker?.close();
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`${tty ? "\n" : ""}${message ?? ""}\n`);
  process.exit(code);
}
process.on("SIGINT", () => void finish(0, "stopped"));
process.on("SIGTERM", () => void finish(0, "stopped"));

if (opts.outage !== undefined) {
  const outageMs = opts.outage * 1000;
  await Bun.sleep(5000);
  await broker!.pause();
  process.stdout.write(`${tty ? "\n" : ""}-- broker down for ${opts.outage} s: readings queue on disk --\n`);
  await Bun.sleep(outageMs);
  await broker!.resume();
  process.stdout.write(`${tty ? "\n" : ""}-- broker back: draining --\n`);
  await Bun.sleep(5000);
  // Stop capturing, then wait for the queue to drain completely before counting.
  await runtime.stopSampling();
  const deadline = performance.now() + 60_000;
  while (performance.now() < deadline) {
    const s = runtime.status();
    if (s.queue.rows === 0 && s.queue.inflight === 0 && received.size >= s.queue.delivered) break;
    await Bun.sleep(200);
  }
  await Bun.sleep(500);
  const s = runtime.status();
  const captured = s.queue.captured;
  const evicted = Object.values(s.queue.evictedByPriority).reduce((a, b) => a + b, 0);
  const lost = captured - evicted - received.size;
  line();
  await finish(
    lost === 0 ? 0 : 1,
    `captured ${captured}, evicted ${evicted}, received ${received.size} distinct seqs: lost ${lost}${lost === 0 ? "" : " (FAIL)"}`,
  );
} else if (opts.duration !== undefined) {
  await Bun.sleep(opts.duration * 1000);
  await finish(0, "done");
}
