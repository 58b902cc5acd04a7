/**
 * The status page's HTML: one document with its styles and scripts inline (uPlot and app.js),
 * so a single response carries everything and nothing is fetched from elsewhere. The markup is
 * static; app.js fills it from /page.json. The Content-Security-Policy allows exactly these
 * inline scripts and styles (by hash) and requests to this origin only.
 */
import { createHash } from "node:crypto";
import { ASSETS } from "./assets.ts";

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;

/** Escape text for HTML content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

// A literal "</script" inside a script would end it early; uPlot and app.js contain none today,
// and this keeps it true if they ever do.
const scriptSafe = (js: string) => js.replace(/<\/(script)/gi, "<\\/$1");

const style = `${ASSETS.uplotCss}\n${ASSETS.pageCss}`;
const scripts = [scriptSafe(ASSETS.uplotJs), scriptSafe(ASSETS.app)];

/** The Content-Security-Policy of both pages. */
export const CSP = [
  "default-src 'none'",
  `script-src ${scripts.map(sha256).join(" ")}`,
  `style-src ${sha256(style)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

const head = (title: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
<style>${style}</style>
</head>`;

const dl = (rows: Array<[string, string]>) =>
  `<dl>${rows.map(([label, key]) => `<dt>${label}</dt><dd data-k="${key}">–</dd>`).join("")}</dl>`;

const chart = (id: string, label: string) =>
  `<figure><div class="chart" id="${id}" aria-hidden="true"></div><figcaption id="${id}-alt">${label}: waiting for data</figcaption></figure>`;

/** PAGE_HTML is the status page (the same bytes for every request). */
export const PAGE_HTML = `${head("fieldrelay status")}
<body>
<header>
<h1>fieldrelay <span data-k="device"></span></h1>
<p id="verdict" role="status" aria-live="polite">Loading…</p>
<p class="meta">version <span data-k="version">–</span> · up <span data-k="uptime">–</span> · <span id="updated">not updated yet</span></p>
<noscript><p>This page needs JavaScript. The same data is at <a href="/health">/health</a> and <a href="/metrics">/metrics</a>.</p></noscript>
</header>
<main>
<section aria-labelledby="h-queue"><h2 id="h-queue">Queue</h2>
${dl([
  ["waiting", "queue.rows"],
  ["bytes", "queue.bytes"],
  ["oldest unsent", "queue.oldest"],
  ["in RAM (uncommitted)", "queue.ram"],
  ["inflight", "queue.inflight"],
  ["evicted", "queue.evicted"],
  ["refused", "queue.refused"],
])}
<dl id="dead-row" hidden><dt>dead-lettered</dt><dd data-k="queue.dead">–</dd><dt>last reason</dt><dd data-k="queue.deadReason">–</dd></dl>
<p id="queue-trend"></p>
<div class="table-scroll"><table id="by-priority"><caption class="muted">Waiting by priority</caption><thead><tr><th scope="col">priority</th><th scope="col">rows</th></tr></thead><tbody></tbody></table></div>
${chart("chart-queue", "Readings waiting, last hour")}
</section>
<section aria-labelledby="h-flow"><h2 id="h-flow">Flow</h2>
${dl([
  ["captured", "rates.captured"],
  ["delivered", "rates.delivered"],
  ["captured total", "queue.captured"],
  ["delivered total", "queue.delivered"],
])}
${chart("chart-rates", "Capture and delivery rates, last hour")}
</section>
<section aria-labelledby="h-broker"><h2 id="h-broker">Broker</h2>
${dl([
  ["state", "broker.state"],
  ["inflight", "broker.inflight"],
  ["reconnects", "broker.reconnects"],
  ["published", "broker.published"],
  ["resent", "broker.resent"],
  ["last error", "broker.error"],
])}
</section>
<section class="wide" aria-labelledby="h-sensors"><h2 id="h-sensors">Sensors</h2>
<div id="sensors"><p class="muted">No sensors configured.</p></div>
</section>
<section aria-labelledby="h-clock"><h2 id="h-clock">Clock</h2>
${dl([
  ["state", "clock.state"],
  ["source", "clock.source"],
  ["quality", "clock.quality"],
  ["error bound", "clock.error"],
  ["last anchor", "clock.anchor"],
  ["anchors this boot", "clock.anchors"],
  ["RTC", "clock.rtc"],
  ["boot", "clock.boot"],
])}
</section>
<section aria-labelledby="h-vitals"><h2 id="h-vitals">Raspberry Pi</h2>
${dl([
  ["SoC temperature", "vitals.temp"],
  ["throttling now", "vitals.throttleNow"],
  ["since boot", "vitals.throttleBoot"],
  ["under-voltage alarm", "vitals.uv"],
  ["data disk free", "vitals.data"],
  ["root disk free", "vitals.root"],
  ["fieldrelay memory (RSS)", "process.rss"],
])}
</section>
<section class="wide" aria-labelledby="h-checks"><h2 id="h-checks">Health checks</h2>
<ul class="checks" id="checks"></ul>
<p class="muted">The same verdict as <a href="/health">/health</a>; counters as in <a href="/metrics">/metrics</a>.</p>
</section>
</main>
<script>${scripts[0]}</script>
<script>${scripts[1]}</script>
</body>
</html>
`;

/** loginHtml is the form a browser gets instead of the page when health.token is set. */
export function loginHtml(message?: string): string {
  return `${head("fieldrelay: sign in")}
<body>
<form class="login" method="post" action="/login">
<h1>fieldrelay status</h1>
<p>This device's status page needs its health token (health.token).</p>
${message ? `<p class="err" role="alert">${escapeHtml(message)}</p>` : ""}
<label class="field" for="token">Health token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
</form>
</body>
</html>
`;
}
