/**
 * The status page as a technician meets it: served by the compiled x64 binary, rendered by a real
 * Chromium, compared with the service's own /health and /metrics, screenshotted at desktop and
 * phone width (dist/screenshots/, kept as CI artifacts), and watched through a broker outage.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import parsePrometheusTextFormat, { type PromFamily } from "parse-prometheus-text-format";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Browser, launchChromium } from "../support/browser.ts";
import {
  binaryMissing,
  DIST,
  type Flavor,
  type RunningFieldrelay,
  spawn,
  Workspace,
} from "../support/fieldrelay.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { freePort } from "../support/ports.ts";
import { CHROMIUM, MOSQUITTO, missing } from "../support/tools.ts";

const flavor: Flavor = "x64";
const skip = binaryMissing(flavor) ?? missing(MOSQUITTO, CHROMIUM);
const SHOTS = join(DIST, "screenshots");
const TOKEN = "e2e-status-page-token-42";
const bearer = { headers: { authorization: `Bearer ${TOKEN}` } };

async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(250);
  }
}

describe.skipIf(skip)("status page from the compiled x64 binary, in headless Chromium", () => {
  const ws = new Workspace("fr-page-");
  let broker: MosquittoBroker;
  let fr: RunningFieldrelay;
  let browser: Browser;
  let page: Page;
  let base: string;
  const problems: string[] = [];

  const metrics = async () => {
    const text = await (await fetch(`${base}/metrics`, bearer)).text();
    const families = new Map(parsePrometheusTextFormat(text).map((f: PromFamily) => [f.name, f]));
    return (name: string, labels: Record<string, string> = {}) => {
      const m = families
        .get(`fieldrelay_${name}`)
        ?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
      return m === undefined ? undefined : Number(m.value);
    };
  };
  const text = async (selector: string) => (await page.locator(selector).first().textContent()) ?? "";
  const num = async (selector: string) => Number((await text(selector)).replace(/[^0-9.-]/g, ""));
  const polls = async () => Number((await page.locator("#updated").getAttribute("data-polls")) ?? 0);

  beforeAll(async () => {
    broker = await MosquittoBroker.start();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const config = ws.writeConfig({
      device: { id: "pi-page" },
      mqtt: { url: broker.url, min_backoff_s: 0.2, max_backoff_s: 1 },
      queue: { path: ws.queuePath, commit_interval_ms: 200 },
      ingest: { listen: "" },
      health: { listen: `127.0.0.1:${port}`, token: TOKEN },
      rtc: { mode: "none" },
      sensor: [
        { name: "sim", driver: "simulated", interval_s: 0.05, seed: 1 },
        { name: "gateway", driver: "simulated", profile: "gateway", interval_s: 0.5, priority: 7, seed: 2 },
        // no 1-Wire bus on this machine: every read fails, which the page must show
        { name: "probe", driver: "ds18b20", interval_s: 1 },
      ],
    });
    fr = spawn(flavor, ["run", "-c", config]);
    await fr.waitForLog((l) => l.msg === "fieldrelay ready", 30_000);
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));
    page.on("request", (r) => {
      if (!r.url().startsWith(base)) problems.push(`request to another origin: ${r.url()}`);
    });
    mkdirSync(SHOTS, { recursive: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    fr?.kill("SIGTERM");
    await fr?.exited;
    await broker?.close();
    ws.cleanup();
  });

  it("asks for the health token in a form, never in the URL, and then shows the page", async () => {
    const first = await page.goto(`${base}/`);
    expect(first?.status()).toBe(401);
    await page.fill("#token", "wrong-token-0000000000");
    await page.click("button[type=submit]");
    await expect.poll(() => page.locator("[role=alert]").count()).toBe(1);
    await page.fill("#token", TOKEN);
    await Promise.all([page.waitForURL(`${base}/`), page.click("button[type=submit]")]);
    await until("the page's first update", async () => (await polls()) >= 1);
    const cookies = await browser.context.cookies(base);
    expect(cookies.map((c) => [c.name, c.httpOnly, c.sameSite])).toEqual([["fr_session", true, "Strict"]]);
    expect(cookies[0]?.value).not.toContain(TOKEN);
    expect(page.url()).not.toContain(TOKEN);
    // the browser logs the two 401 answers (form, wrong token); nothing else may go wrong
    expect(problems.filter((p) => !p.includes("status of 401"))).toEqual([]);
    problems.length = 0;
  });

  it("renders the values of /health and /metrics, with text for every chart, at desktop and 360 px", async () => {
    await page.goto(`${base}/`);
    await until("three polls", async () => (await polls()) >= 3);
    await until("the probe's failures", async () => (await num('[data-sensor="probe"] .failures')) > 0);

    const before = await metrics();
    const health = (await (await fetch(`${base}/health`, bearer)).json()) as {
      status: string;
      checks: Record<string, { status: string }>;
    };
    const p0 = await polls();
    await until("a poll after the scrape", async () => (await polls()) > p0);
    const shown = {
      verdict: await page.locator("#verdict").getAttribute("data-status"),
      checks: Object.fromEntries(
        await page
          .locator("#checks li")
          .evaluateAll((lis) =>
            lis.map((li) => [li.getAttribute("data-check"), li.children[1]?.textContent]),
          ),
      ),
      captured: await num('[data-k="queue.captured"]'),
      reads: Object.fromEntries(
        await Promise.all(
          ["sim", "gateway", "probe"].map(async (s) => [s, await num(`[data-sensor="${s}"] .reads`)]),
        ),
      ),
      failures: Object.fromEntries(
        await Promise.all(
          ["sim", "gateway", "probe"].map(async (s) => [s, await num(`[data-sensor="${s}"] .failures`)]),
        ),
      ),
      broker: await page.locator('[data-k="broker.state"]').getAttribute("data-connected"),
      clockSource: await text('[data-k="clock.source"]'),
      clockQuality: await text('[data-k="clock.quality"]'),
      boot: await text('[data-k="clock.boot"]'),
      dataDisk: await text('[data-k="vitals.data"]'),
    };
    const after = await metrics();

    expect(shown.verdict).toBe(health.status);
    expect(shown.checks).toEqual(
      Object.fromEntries(Object.entries(health.checks).map(([k, c]) => [k, c.status])),
    );
    expect(health.checks.sensors?.status).toBe("degraded"); // the probe
    const between = (v: number, name: string, labels?: Record<string, string>) => {
      expect(v).toBeGreaterThanOrEqual(before(name, labels)!);
      expect(v).toBeLessThanOrEqual(after(name, labels)!);
    };
    between(shown.captured, "readings_captured_total");
    for (const s of ["sim", "gateway", "probe"]) {
      between(shown.reads[s], "sensor_reads_total", { sensor: s });
      between(shown.failures[s], "sensor_failures_total", { sensor: s });
    }
    expect(shown.failures.probe).toBeGreaterThan(0);
    expect(shown.reads.sim).toBeGreaterThan(0);
    expect(shown.broker).toBe(after("mqtt_connected") === 1 ? "true" : "false");
    expect(after("clock_info", { source: shown.clockSource, quality: shown.clockQuality })).toBe(1);
    expect(shown.boot).toMatch(/^[0-9a-f-]{36}$/);
    const GiB = (b: number) => `${(b / 1024 ** 3).toFixed(1)} GiB`;
    expect(shown.dataDisk).toContain(`of ${GiB(after("filesystem_size_bytes", { mount: "data" })!)}`);

    // each sensor field: its latest value and a sparkline with a text alternative
    const spark = page.locator('[data-sensor="sim"] figure').first();
    expect(await spark.locator(".v").textContent()).toMatch(/^-?\d/);
    expect(await spark.locator(".spark").getAttribute("aria-hidden")).toBe("true");
    expect(await spark.locator("figcaption").textContent()).toMatch(/now .*min .*max/);
    for (const id of ["chart-queue", "chart-rates"]) {
      expect(await page.locator(`#${id}`).getAttribute("aria-hidden")).toBe("true");
      expect(await text(`#${id}-alt`)).toMatch(/now .*min .*max/);
    }
    expect(await page.locator("canvas").count()).toBeGreaterThanOrEqual(2);

    await page.screenshot({ path: join(SHOTS, "status-page-desktop.png"), fullPage: true });
    await page.setViewportSize({ width: 360, height: 800 });
    await page.waitForTimeout(2500);
    expect(await page.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(360);
    await page.screenshot({ path: join(SHOTS, "status-page-360px.png"), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
    expect(problems).toEqual([]);
  });

  it("keeps updating through a broker outage and shows the backlog growing, then draining", async () => {
    const rows = () => num('[data-k="queue.rows"]');
    await until("an empty queue", async () => (await rows()) === 0);
    await broker.stop();
    const pollsAtOutage = await polls();
    await until("the page to show the broker down", async () =>
      (await page.locator('[data-k="broker.state"]').getAttribute("data-connected")) === "false"
        ? true
        : undefined,
    );
    // growing: the depth shown rises from poll to poll
    const seen: number[] = [];
    await until(
      "the backlog to grow over three polls",
      async () => {
        const n = await rows();
        if (n !== seen.at(-1)) seen.push(n);
        return seen.length >= 4 && n >= 100;
      },
      30_000,
    );
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]!);
    expect(await polls()).toBeGreaterThan(pollsAtOutage + 2);
    expect(await text("#chart-queue-alt")).toContain("rising");
    expect(await text('[data-k="broker.error"]')).not.toBe("none");

    // draining: back to zero once the broker returns
    await broker.start();
    await until("the backlog to drain", async () => (await rows()) === 0, 30_000);
    expect(await page.locator('[data-k="broker.state"]').getAttribute("data-connected")).toBe("true");
    const caption = await text("#chart-queue-alt");
    expect(caption).toMatch(/now 0,/);
    // the hill is in the chart (its rows are 5 s apart, so not necessarily the very peak)
    expect(Number(/max ([\d,]+)/.exec(caption)?.[1]?.replaceAll(",", ""))).toBeGreaterThan(0);
    expect(problems).toEqual([]);
  });
});
