/**
 * Benchmark: the status page's cost on the device. The compiled x64 binary (src/main.ts with Bun
 * when it is not built) runs with a broker and three simulated sensors; RSS is sampled from
 * /proc/<pid>/status for a period with nobody watching (the baseline), then for a period of the
 * same length with the page open in headless Chromium, polling every 2 s. Also reported: the
 * page's transfer size, how long one update takes to render in the browser (uPlot charts), and
 * the bytes the open page moves per minute once loaded (through a counting TCP proxy: HTTP
 * headers and bodies each way, which is what SSE could save at best — see README "Status page").
 *
 *   bun test/bench/run.ts page                         # 1 minute per period
 *   FIELDRELAY_BENCH_PAGE_MINUTES=10 bun test/bench/run.ts page   # the 10-minute figure
 */
import { readFileSync } from "node:fs";
import { launchChromium } from "../support/browser.ts";
import { CountingProxy } from "../support/counting-proxy.ts";
import { binaryMissing, spawn, Workspace } from "../support/fieldrelay.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { freePort } from "../support/ports.ts";

export interface PageBenchmarkResult {
  minutes: number;
  flavor: string;
  rssStartMb: number;
  baselineGrowthMb: number;
  pageGrowthMb: number;
  pageBytes: number;
  pageGzipBytes: number;
  polls: number;
  renderMedianMs: number;
  /** Bytes per minute between browser and device while the page is open (after its first load). */
  wireUpPerMin: number;
  wireDownPerMin: number;
  /** Bytes of the first load: the document and the first (whole-hour) /page.json. */
  wireFirstLoad: number;
  /** RSS (MB) at each minute of each period: a plateau is the heap settling, a slope a leak. */
  baselineRssByMinuteMb: number[];
  pageRssByMinuteMb: number[];
}

const rssMb = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
};

/**
 * A minute's RSS is the median of samples 10 s apart, not one sample: RSS swings by 1–3 MB with
 * the moment of the JS garbage collector's last run (measured: the heap after a full GC stays at
 * 13.2–13.8 MB with or without the page, while single samples moved ±2 MB), and one sample taken
 * just before a collection failed the 5 MB target in one run of three.
 */
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/** The page benches' device: three simulated sensors (one at 10/s), the health server on `port`. */
export function writePageBenchConfig(ws: Workspace, brokerUrl: string, port: number): string {
  return ws.writeConfig({
    device: { id: "bench-page" },
    mqtt: { url: brokerUrl },
    queue: { path: ws.queuePath },
    ingest: { listen: "" },
    health: { listen: `127.0.0.1:${port}` },
    rtc: { mode: "none" },
    sensor: [
      { name: "sim", driver: "simulated", interval_s: 0.1, seed: 1 },
      { name: "gateway", driver: "simulated", profile: "gateway", interval_s: 1, seed: 2 },
      { name: "camera", driver: "simulated", profile: "camera", interval_s: 1, seed: 3 },
    ],
  });
}

export async function runPageBenchmark(
  minutes = Number(process.env.FIELDRELAY_BENCH_PAGE_MINUTES ?? 1),
): Promise<PageBenchmarkResult> {
  const periodMs = minutes * 60_000;
  const flavor = binaryMissing("x64") === undefined ? "x64" : "source";
  const broker = await MosquittoBroker.start();
  const ws = new Workspace("fr-bench-page-");
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const config = writePageBenchConfig(ws, broker.url, port);
  const fr = spawn(flavor as "x64" | "source", ["run", "-c", config]);
  const browser = await launchChromium();
  try {
    await fr.waitForLog((l) => l.msg === "fieldrelay ready", 60_000);
    const pid = fr.proc.pid;
    // warm-up (history columns, JIT, SQLite page cache), then three samples 10 s apart
    await Bun.sleep(15_000);
    const startSamples: number[] = [];
    for (let i = 0; i < 3; i++) {
      startSamples.push(rssMb(pid));
      await Bun.sleep(10_000);
    }
    const baselineRssByMinuteMb: number[] = [];
    for (let m = 0; m < minutes; m++) {
      const samples: number[] = [];
      for (let i = 0; i < 6; i++) {
        await Bun.sleep(10_000);
        samples.push(rssMb(pid));
      }
      baselineRssByMinuteMb.push(median(samples));
    }

    const plain = await fetch(`${base}/`, { headers: { "accept-encoding": "identity" } });
    const pageBytes = (await plain.arrayBuffer()).byteLength;
    const gz = await fetch(`${base}/`, {
      headers: { "accept-encoding": "gzip" },
      decompress: false,
    } as RequestInit);
    const pageGzipBytes = (await gz.arrayBuffer()).byteLength;

    const proxy = await CountingProxy.start(port);
    const page = await browser.context.newPage();
    await page.goto(`http://127.0.0.1:${proxy.port}/`);
    await page.locator("#updated[data-polls='1']").waitFor({ timeout: 30_000 });
    const wireFirstLoad = proxy.total;
    proxy.reset();
    const wireFrom = Date.now();
    const renders: number[] = [];
    const pageRssByMinuteMb: number[] = [];
    const opened = Date.now();
    const deadline = opened + periodMs;
    let lastPoll = "";
    let minuteSamples: number[] = [];
    let nextSample = opened + 10_000;
    while (Date.now() < deadline) {
      await Bun.sleep(2000);
      if (Date.now() >= nextSample) {
        minuteSamples.push(rssMb(pid));
        nextSample += 10_000;
      }
      if (Date.now() - opened >= (pageRssByMinuteMb.length + 1) * 60_000) {
        pageRssByMinuteMb.push(median(minuteSamples));
        minuteSamples = [];
      }
      const poll = (await page.locator("#updated").getAttribute("data-polls")) ?? "";
      if (poll === lastPoll) continue;
      lastPoll = poll;
      renders.push(Number(await page.locator("#updated").getAttribute("data-render-ms")));
    }
    if (pageRssByMinuteMb.length < minutes) pageRssByMinuteMb.push(median([...minuteSamples, rssMb(pid)]));
    const wireMinutes = (Date.now() - wireFrom) / 60_000;
    const wireUpPerMin = proxy.up / wireMinutes;
    const wireDownPerMin = proxy.down / wireMinutes;
    await page.close();
    await proxy.close();
    renders.sort((a, b) => a - b);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const rssStartMb = mean(startSamples);
    const baselineEnd = mean(baselineRssByMinuteMb.slice(-3));
    const pageEnd = mean(pageRssByMinuteMb.slice(-3));
    return {
      minutes,
      flavor,
      rssStartMb,
      baselineGrowthMb: baselineEnd - rssStartMb,
      pageGrowthMb: pageEnd - baselineEnd,
      pageBytes,
      pageGzipBytes,
      polls: Number(lastPoll),
      renderMedianMs: renders[Math.floor(renders.length / 2)] ?? Number.NaN,
      wireUpPerMin,
      wireDownPerMin,
      wireFirstLoad,
      baselineRssByMinuteMb,
      pageRssByMinuteMb,
    };
  } finally {
    await browser.close();
    fr.kill("SIGTERM");
    await fr.exited;
    await broker.close();
    ws.cleanup();
  }
}

if (import.meta.main) console.log(await runPageBenchmark(Number(process.argv[2] ?? 1)));
