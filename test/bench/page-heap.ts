/**
 * Where the status page's RSS goes (a diagnostic, not a bench row): `fieldrelay run` from source
 * with three simulated sensors, through three periods of PHASE_S seconds (default 240) — nobody
 * watching, /page.json polled every 2 s as the page does, nobody watching again. Every 30 s it
 * prints the child's RSS split into anonymous and file-backed memory (/proc/<pid>/smaps_rollup);
 * at the end of each period it forces a full GC in the child and prints the JS heap before and
 * after (page-heap-child.ts). Memory a poll keeps shows up as heap growth after GC.
 *
 *   PHASE_S=240 bun test/bench/page-heap.ts
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO, Workspace } from "../support/fieldrelay.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { freePort } from "../support/ports.ts";
import { writePageBenchConfig } from "./page.ts";

const PHASE_S = Number(process.env.PHASE_S ?? 240);
const broker = await MosquittoBroker.start();
const ws = new Workspace("fr-page-heap-");
const port = await freePort();
const config = writePageBenchConfig(ws, broker.url, port);
const child = Bun.spawn([process.execPath, join(REPO, "test/bench/page-heap-child.ts"), config], {
  stdout: "ignore",
  stderr: "pipe",
});
void (async () => {
  const decoder = new TextDecoder();
  for await (const chunk of child.stderr)
    for (const line of decoder.decode(chunk).split("\n"))
      if (line.includes('-gc"')) console.log(`heap ${line}`);
})();

const smaps = () => {
  const text = readFileSync(`/proc/${child.pid}/smaps_rollup`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? 0);
  const mb = (n: number) => (n / 1024).toFixed(1);
  return `rss ${mb(kb("Rss"))} MB, anonymous ${mb(kb("Anonymous"))}, file ${mb(kb("Rss") - kb("Anonymous"))}`;
};
const gc = async (label: string) => {
  child.kill("SIGUSR2");
  await Bun.sleep(2000);
  console.log(`${label} after GC: ${smaps()}`);
};

async function period(label: string, poll: boolean): Promise<void> {
  const end = Date.now() + PHASE_S * 1000;
  let since: number | undefined;
  let nextSample = Date.now() + 30_000;
  while (Date.now() < end) {
    if (poll) {
      const res = await fetch(
        `http://127.0.0.1:${port}/page.json${since === undefined ? "" : `?since=${since}`}`,
      );
      const t = ((await res.json()) as { history: { t: number[] } }).history.t;
      if (t.length > 0) since = t.at(-1);
    }
    await Bun.sleep(2000);
    if (Date.now() >= nextSample) {
      console.log(`${label}: ${smaps()}`);
      nextSample += 30_000;
    }
  }
  await gc(label);
}

try {
  await Bun.sleep(45_000);
  await gc("warm");
  await period("unwatched", false);
  await period("polled", true);
  await period("unwatched again", false);
} finally {
  child.kill("SIGTERM");
  await child.exited;
  await broker.close();
  ws.cleanup();
}
