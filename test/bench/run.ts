/**
 * npm run bench: every benchmark, each printed as a figure beside a baseline measured in the same
 * run, and the ratio against its target. Figures, not assertions: the machines are shared.
 */
export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  baseline?: number;
  ratio?: number;
  target: string;
}

/** Benchmark 2: a 100 000-reading backlog drained from the real SQLite queue vs raw mqtt.js. */
async function drainRows(): Promise<BenchRow[]> {
  const { runDrainBenchmark } = await import("./drain.ts");
  const { openQueue } = await import("../../src/queue/index.ts");
  const { silentLogger } = await import("../../src/log/index.ts");
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const dir = mkdtempSync(`${tmpdir()}/fr-bench-drain-`);
  try {
    const r = await runDrainBenchmark(() =>
      openQueue({ path: `${dir}/queue.db`, log: silentLogger(), maxRows: 1_000_000 }),
    );
    return [
      {
        name: `drain ${r.readings} backlog, QoS 1, SQLite queue → mosquitto (vs raw mqtt.js)`,
        value: r.publisherMsgPerS,
        unit: "msg/s",
        baseline: r.rawMsgPerS,
        ratio: r.ratio,
        target: "ratio ≥ 0.7",
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Benchmark 4: RSS growth with the status page open (FIELDRELAY_BENCH_PAGE_MINUTES, default 1). */
async function pageRows(): Promise<BenchRow[]> {
  const { runPageBenchmark } = await import("./page.ts");
  const r = await runPageBenchmark();
  process.stderr.write(
    `bench: page: RSS each minute (MB), unwatched: ${r.baselineRssByMinuteMb.map((x) => x.toFixed(1)).join(" ")}; page open: ${r.pageRssByMinuteMb.map((x) => x.toFixed(1)).join(" ")}\n`,
  );
  return [
    {
      name: `RSS growth, status page open ${r.minutes} min, polling every 2 s (${r.flavor}; vs the same time unwatched)`,
      value: r.pageGrowthMb,
      unit: "MB",
      baseline: r.baselineGrowthMb,
      target: `< 5 MB over 10 min (RSS at start ${r.rssStartMb.toFixed(0)} MB)`,
    },
    {
      name: `status page render per update in Chromium (median of ${r.polls} polls; page ${(r.pageBytes / 1024).toFixed(0)} KiB, ${(r.pageGzipBytes / 1024).toFixed(0)} KiB gzip)`,
      value: r.renderMedianMs,
      unit: "ms",
      target: "< 2000 ms poll interval",
    },
    {
      name: `status page on the wire while open (first load ${(r.wireFirstLoad / 1024).toFixed(0)} KiB; then requests ${(r.wireUpPerMin / 1024).toFixed(1)} KiB/min, answers ${(r.wireDownPerMin / 1024).toFixed(1)} KiB/min)`,
      value: (r.wireUpPerMin + r.wireDownPerMin) / 1024,
      unit: "KiB/min",
      target: "informational: what SSE could save at most is the request side and the answer headers",
    },
  ];
}

/** Benchmark 5: the fleet sink into PostgreSQL vs direct inserts with the same client and batch size. */
async function sinkRows(): Promise<BenchRow[]> {
  const { runSinkBenchmark } = await import("./sink.ts");
  const rows: BenchRow[] = [];
  // Batches of 50 (the edge with [mqtt.batch] on) and single envelopes (batching off, the default).
  for (const [readings, perMessage] of [
    [200_000, 50],
    [100_000, 1],
  ] as const) {
    const r = await runSinkBenchmark(readings, perMessage);
    rows.push({
      name: `sink: ${r.readings} readings, ${r.perMessage} per message, mosquitto → PostgreSQL, committed (vs direct Bun.sql inserts, same batch size)`,
      value: r.sinkPerS,
      unit: "readings/s",
      baseline: r.directPerS,
      ratio: r.ratio,
      target: "ratio ≥ 0.5 and ≥ 20 000 readings/s",
    });
  }
  return rows;
}

/**
 * Benchmark 3: the compiled x64 binary under libfaketime boots offline at 2000-01-01 with a LAN
 * broker, then syncs; a consumer re-stamps the readings it received unsynced from the clock
 * message. The error against the true time (CLOCK_MONOTONIC is not faked) over 5 runs.
 * Needs `npm run build`, mosquitto and faketime.
 */
async function clockRows(): Promise<BenchRow[]> {
  const { runFaketimeRestamp } = await import("../support/faketime-clock.ts");
  const perRunMax: number[] = [];
  const all: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await runFaketimeRestamp();
    const errs = r.errors.map((e) => e.errorMs);
    perRunMax.push(Math.max(...errs));
    all.push(...errs);
  }
  all.sort((a, b) => a - b);
  const q = (p: number) => all[Math.min(all.length - 1, Math.floor(p * all.length))]!;
  return [
    {
      name: `re-stamp error after an offline boot at 2000-01-01 (libfaketime), worst of 5 runs; per-run max ${perRunMax.map((x) => x.toFixed(2)).join(", ")} ms; median ${q(0.5).toFixed(2)}, p95 ${q(0.95).toFixed(2)} over ${all.length} readings`,
      value: Math.max(...perRunMax),
      unit: "ms",
      target: "≤ 50 ms",
    },
  ];
}

/**
 * Benchmark 4: bytes the data partition's block device was asked to write per reading, on the
 * emulated Pi (ext4 data=journal, so the journal's second copy counts), at 50 readings/s online
 * and offline. Measured by `npm run test:crash` (a guest run, minutes) into device-wear.json;
 * shown beside the process-level figure of benchmark 1 measured in this run (ratio = device /
 * process: what the file system and its journal add).
 */
async function deviceRows(processRows: BenchRow[]): Promise<BenchRow[]> {
  const { existsSync, readFileSync } = await import("node:fs");
  const path = new URL("./device-wear.json", import.meta.url);
  if (!existsSync(path)) {
    process.stderr.write(
      "bench: no test/bench/device-wear.json (run npm run test:crash); device rows skipped\n",
    );
    return [];
  }
  type Side = { readings: number; bytesPerReading: number };
  const m = JSON.parse(readFileSync(path, "utf8")) as { measured: string; online: Side; offline: Side };
  const processFigure = (prefix: string) => processRows.find((r) => r.name.startsWith(prefix))?.value;
  return (["online", "offline"] as const).map((side) => {
    const perProcess = processFigure(`bytes written per reading, ${side}`);
    const value = m[side].bytesPerReading;
    return {
      name: `device bytes written per reading, ${side} (50/s, emulated Pi, ext4 data=journal; ${m[side].readings} readings, npm run test:crash ${m.measured.slice(0, 10)})`,
      value,
      unit: "B",
      baseline: perProcess,
      ratio: perProcess ? value / perProcess : undefined,
      target: "reported (baseline: process-level figure of this run)",
    };
  });
}

const rows: BenchRow[] = [];
const only = process.argv[2];
const suites: Array<[string, () => Promise<BenchRow[]>]> = [
  ["queue", async () => (await import("./queue.ts")).runQueueBenchmarks()],
  ["drain", drainRows],
  ["ingest", async () => (await import("./ingest.ts")).runIngestBenchmarks()],
  ["clock", clockRows],
  ["page", pageRows],
  ["startup", async () => (await import("./startup.ts")).runStartupBenchmarks()],
  ["batch", async () => (await import("./batch.ts")).batchRows()],
  ["sink", sinkRows],
];
for (const [name, run] of suites) {
  if (only && only !== name) continue;
  process.stderr.write(`bench: ${name}…\n`);
  rows.push(...(await run()));
}
if (!only || only === "device") rows.push(...(await deviceRows(rows)));
const fmt = (n: number | undefined) => (n === undefined ? "" : n >= 100 ? n.toFixed(0) : n.toFixed(2));
console.log("| benchmark | fieldrelay | baseline | ratio | target |");
console.log("| --- | --- | --- | --- | --- |");
for (const r of rows) {
  console.log(
    `| ${r.name} | ${fmt(r.value)} ${r.unit} | ${r.baseline === undefined ? "" : `${fmt(r.baseline)} ${r.unit}`} | ${fmt(r.ratio)} | ${r.target} |`,
  );
}
process.exit(0);
