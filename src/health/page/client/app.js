// fieldrelay status page: polls /page.json while the tab is visible and fills the static markup.
// Text only changes when its value does and charts are updated in place, so nothing flashes.
// Runs in the browser; uPlot is the global loaded by the script before this one.
(() => {
  const POLL_MS = 2000;
  const WINDOW_S = 3600;
  /* global uPlot */
  const U = globalThis.uPlot;

  // ---- formatting ----
  const int = (n) => (n === null || n === undefined ? "–" : Math.round(n).toLocaleString("en-US"));
  const num = (n, d = 1) => (n === null || n === undefined ? "–" : Number(n).toFixed(d));
  const bytes = (n) => {
    if (n === null || n === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    let v = n;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
  };
  const dur = (s) => {
    if (s === null || s === undefined) return "–";
    if (s < 90) return `${Math.round(s)} s`;
    if (s < 5400) return `${Math.round(s / 60)} min`;
    if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
    return `${(s / 86400).toFixed(1)} d`;
  };
  /** An x-axis tick: minutes before now (seconds when close to now). */
  const minutes = (m) => (Math.abs(m) < 2 ? `${Math.round(m * 60)} s` : `${Math.round(m)} min`);
  const ago = (s) => (s === null || s === undefined ? "never" : `${dur(s)} ago`);
  const rate = (r) => (r === null || r === undefined ? "–" : `${r < 10 ? r.toFixed(2) : r.toFixed(0)} /s`);
  const value = (v) =>
    typeof v === "number"
      ? Number.isInteger(v)
        ? String(v)
        : v.toFixed(Math.abs(v) < 10 ? 3 : 2)
      : String(v);
  const diskFree = (d) =>
    d
      ? `${bytes(d.available_bytes)} of ${bytes(d.total_bytes)} (${Math.round((100 * d.available_bytes) / d.total_bytes)} %)`
      : "unknown";

  // ---- DOM helpers ----
  const $ = (sel) => document.querySelector(sel);
  const setText = (el, text) => {
    if (el && el.textContent !== text) el.textContent = text;
  };
  const setClass = (el, cls) => {
    if (el && el.className !== cls) el.className = cls;
  };
  const bound = new Map();
  for (const el of document.querySelectorAll("[data-k]")) {
    const list = bound.get(el.dataset.k) ?? [];
    list.push(el);
    bound.set(el.dataset.k, list);
  }
  const put = (key, text) => {
    for (const el of bound.get(key) ?? []) setText(el, text);
  };
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const PALETTE = [
    "#0969da",
    "#bf3989",
    "#1a7f37",
    "#9a6700",
    "#8250df",
    "#cf222e",
    "#1b7c83",
    "#6e7781",
    "#953800",
    "#0550ae",
  ];

  // ---- charts ----
  /** Summary of a series for screen readers and as the visible caption. */
  function describe(label, xs, ys, fmt) {
    const pts = ys.filter((y) => y !== null && y !== undefined);
    if (pts.length === 0) return `${label}: no data yet`;
    const first = pts[0];
    const last = pts[pts.length - 1];
    const min = Math.min(...pts);
    const max = Math.max(...pts);
    const span = xs.length > 1 ? dur(-xs[0] * 60) : "moment";
    const trend = last > first ? "rising" : last < first ? "falling" : "steady";
    return `${label}, last ${span}: now ${fmt(last)}, min ${fmt(min)}, max ${fmt(max)}, ${trend} (from ${fmt(first)})`;
  }

  const charts = new Map();
  /** Create (or recreate when its series change) a uPlot chart in el and give it data. */
  function plot(el, key, names, data, opts = {}) {
    if (!U || !el) return;
    const sig = names.join("|");
    let c = charts.get(key);
    const width = Math.max(120, el.clientWidth);
    if (c && c.sig !== sig) {
      c.u.destroy();
      charts.delete(key);
      c = undefined;
    }
    if (!c) {
      const axis = {
        stroke: css("--muted"),
        grid: { stroke: css("--grid"), width: 1 },
        ticks: { show: false },
      };
      const u = new U(
        {
          width,
          height: opts.height ?? 160,
          cursor: opts.spark ? { show: false } : { drag: { x: false, y: false } },
          legend: { show: !opts.spark },
          scales: {
            x: { time: false },
            y: { range: (_u, lo, hi) => [Math.min(0, lo ?? 0), Math.max(1, hi ?? 1) * 1.05] },
          },
          axes: opts.spark
            ? [{ show: false }, { show: false }]
            : [
                { ...axis, values: (_u, ticks) => ticks.map(minutes) },
                { ...axis, size: 56 },
              ],
          series: [
            { label: "time", value: (_u, v) => (v === null || v === undefined ? "–" : minutes(v)) },
            ...names.map((n, i) => ({
              label: n,
              stroke: opts.colors?.[i] ?? PALETTE[i % PALETTE.length],
              width: opts.spark ? 1.5 : 2,
              points: { show: false },
              spanGaps: false,
            })),
          ],
        },
        data,
        el,
      );
      c = { u, sig, el };
      charts.set(key, c);
    } else {
      c.u.setData(data);
    }
  }
  const resize = new ResizeObserver(() => {
    for (const c of charts.values()) {
      const w = Math.max(120, c.el.clientWidth);
      if (Math.abs(c.u.width - w) > 2) c.u.setSize({ width: w, height: c.u.height });
    }
  });
  for (const el of document.querySelectorAll(".chart")) resize.observe(el);

  // ---- history kept by the page (the device sends only new rows after the first poll) ----
  const hist = { t: [], rows: [], capt: [], deliv: [], dead: [], prio: new Map(), sensors: new Map() };
  let lastT;
  const live = [];
  function append(h) {
    const n = hist.t.length;
    const column = (map, key) => {
      let a = map.get(key);
      if (!a) {
        a = new Array(n).fill(null);
        map.set(key, a);
      }
      return a;
    };
    for (let i = 0; i < h.t.length; i++) {
      hist.t.push(h.t[i]);
      hist.rows.push(h.rows[i] ?? null);
      hist.capt.push(h.captured_per_s[i] ?? null);
      hist.deliv.push(h.delivered_per_s[i] ?? null);
      hist.dead.push(h.dead_lettered ? (h.dead_lettered[i] ?? null) : null);
    }
    const extend = (a, src) => {
      while (a.length < hist.t.length - h.t.length) a.push(null);
      for (let i = 0; i < h.t.length; i++) a.push(src ? (src[i] ?? null) : null);
    };
    const keys = new Set([...hist.prio.keys(), ...Object.keys(h.by_priority)]);
    for (const p of keys) extend(column(hist.prio, p), h.by_priority[p]);
    const seen = new Set(hist.sensors.keys());
    for (const [s, fields] of Object.entries(h.sensors))
      for (const f of Object.keys(fields)) seen.add(`${s}\u0000${f}`);
    for (const key of seen) {
      const [s, f] = key.split("\u0000");
      extend(column(hist.sensors, key), h.sensors[s]?.[f]);
    }
    if (h.t.length) lastT = h.t[h.t.length - 1];
    // keep one hour
    const cut = hist.t.findIndex((t) => t >= lastT - WINDOW_S);
    if (cut > 0) {
      for (const a of [hist.t, hist.rows, hist.capt, hist.deliv, hist.dead]) a.splice(0, cut);
      for (const a of hist.prio.values()) a.splice(0, cut);
      for (const a of hist.sensors.values()) a.splice(0, cut);
    }
  }

  // ---- rendering ----
  function renderHeader(d) {
    put("device", d.device ?? "");
    if (d.device && document.title !== `fieldrelay ${d.device}`) document.title = `fieldrelay ${d.device}`;
    put("version", d.version);
    put("uptime", dur(d.uptime_s));
    const verdict = $("#verdict");
    const bad = Object.entries(d.health.checks).filter(
      ([, c]) => c.status !== "ok" && c.status !== "unknown",
    );
    setText(verdict, `${d.health.status}${bad.length ? ` — ${bad.map(([n]) => n).join(", ")}` : ""}`);
    setClass(verdict, `state-${d.health.status === "healthy" ? "ok" : d.health.status}`);
    verdict.dataset.status = d.health.status;
    const ul = $("#checks");
    const items = Object.entries(d.health.checks);
    while (ul.children.length > items.length) ul.lastChild.remove();
    items.forEach(([name, c], i) => {
      let li = ul.children[i];
      if (!li) {
        li = document.createElement("li");
        li.innerHTML = "<strong></strong> <span></span>: <span></span>";
        ul.append(li);
      }
      li.dataset.check = name;
      setText(li.children[0], name);
      setText(li.children[1], c.status);
      setClass(li.children[1], `state-${c.status}`);
      setText(li.children[2], c.reason);
    });
  }

  function renderQueue(d, now) {
    const q = d.queue;
    put("queue.rows", int(q.rows));
    put("queue.bytes", bytes(q.bytes));
    put("queue.oldest", q.rows > 0 ? dur(q.oldest_unsent_age_s) : "–");
    put("queue.ram", int(q.pending_in_ram));
    put("queue.inflight", int(q.inflight));
    put("queue.evicted", int(q.evicted_total));
    put("queue.refused", `${int(q.refused_total)}${q.refusing ? " — REFUSING new readings" : ""}`);
    put("queue.captured", int(q.captured_total));
    put("queue.delivered", int(q.delivered_total));
    $("#dead-row").hidden = q.dead_lettered === null || q.dead_lettered === undefined;
    put("queue.dead", int(q.dead_lettered));
    put("queue.deadReason", q.last_dead_letter_reason ?? "none");

    const tbody = $("#by-priority tbody");
    const prios = Object.keys(q.by_priority).sort((a, b) => Number(b) - Number(a));
    const rowsHtml = prios.length ? prios : ["none"];
    while (tbody.children.length > rowsHtml.length) tbody.lastChild.remove();
    rowsHtml.forEach((p, i) => {
      let tr = tbody.children[i];
      if (!tr) {
        tr = document.createElement("tr");
        tr.innerHTML = "<th scope='row'></th><td></td>";
        tbody.append(tr);
      }
      tr.dataset.priority = p;
      setText(tr.children[0], p === "none" ? "—" : p);
      setText(tr.children[1], p === "none" ? "empty" : int(q.by_priority[p]));
    });

    // Between history rows (5 s apart) the depths seen at each poll are kept, so a short peak
    // stays in the chart until a history row covers its time.
    live.push({ t: now, rows: q.rows, prio: q.by_priority });
    while (live.length && (live[0].t <= (lastT ?? -Infinity) || live.length > 30)) live.shift();
    const xs = [...hist.t, ...live.map((p) => p.t)].map((t) => (t - now) / 60);
    const total = [...hist.rows, ...live.map((p) => p.rows)];
    // Trend: the live depth against the depth a minute ago.
    let before;
    for (let i = hist.t.length - 1; i >= 0; i--) {
      if (now - hist.t[i] >= 55 && hist.rows[i] !== null) {
        before = { rows: hist.rows[i], s: now - hist.t[i] };
        break;
      }
    }
    const trendEl = $("#queue-trend");
    if (before) {
      const perMin = ((q.rows - before.rows) / before.s) * 60;
      const word = Math.abs(perMin) < 0.5 ? "steady" : perMin > 0 ? "growing" : "draining";
      const eta = word === "draining" && q.rows > 0 ? `, empty in about ${dur(q.rows / (-perMin / 60))}` : "";
      setText(
        trendEl,
        `Trend: ${word} (${perMin > 0 ? "+" : ""}${int(perMin)} rows/min over the last ${dur(before.s)}${eta})`,
      );
      trendEl.dataset.trend = word;
    } else {
      setText(trendEl, "Trend: needs a minute of history");
      trendEl.dataset.trend = "unknown";
    }

    const names = ["total"];
    const series = [total];
    const keys = [...new Set([...hist.prio.keys(), ...Object.keys(q.by_priority)])].sort(
      (a, b) => Number(b) - Number(a),
    );
    for (const p of keys) {
      names.push(`priority ${p}`);
      series.push([
        ...(hist.prio.get(p) ?? new Array(hist.t.length).fill(null)),
        ...live.map((l) => l.prio[p] ?? 0),
      ]);
    }
    plot($("#chart-queue"), "queue", names, [xs, ...series]);
    setText($("#chart-queue-alt"), describe("Readings waiting", xs, total, int));
  }

  function renderFlow(d, now) {
    put(
      "rates.captured",
      `${rate(d.rates.captured_per_s)}${d.rates.window_s ? ` (last ${dur(d.rates.window_s)})` : ""}`,
    );
    put(
      "rates.delivered",
      `${rate(d.rates.delivered_per_s)}${d.rates.window_s ? ` (last ${dur(d.rates.window_s)})` : ""}`,
    );
    // the history's rows, then the live rates (averaged over the last minute) at "now"
    const x = [...hist.t.map((t) => (t - now) / 60), 0];
    const capt = [...hist.capt, d.rates.captured_per_s];
    const deliv = [...hist.deliv, d.rates.delivered_per_s];
    plot($("#chart-rates"), "rates", ["captured /s", "delivered /s"], [x, capt, deliv], {
      colors: ["#0969da", "#1a7f37"],
    });
    setText(
      $("#chart-rates-alt"),
      `${describe("Captured per second", x, capt, (v) => v.toFixed(2))}. ${describe("Delivered per second", x, deliv, (v) => v.toFixed(2))}`,
    );
  }

  function renderBroker(d) {
    const b = d.broker;
    const state = b.connected ? "connected" : `disconnected — retrying in ${num(b.backoff_s)} s`;
    put("broker.state", state);
    for (const el of bound.get("broker.state") ?? []) {
      setClass(el, b.connected ? "state-ok" : "state-degraded");
      el.dataset.connected = String(b.connected);
    }
    put("broker.inflight", int(b.inflight));
    put("broker.reconnects", int(b.reconnects));
    put("broker.published", int(b.published));
    put("broker.resent", int(b.resent));
    put("broker.error", b.last_error ?? "none");
  }

  /** One block per sensor: name and counters, then a tile per field with its value and sparkline. */
  function renderSensors(d, now) {
    const list = $("#sensors");
    if (d.sensors.length === 0) return;
    for (const p of list.querySelectorAll(":scope > p")) p.remove();
    while (list.children.length > d.sensors.length) list.lastChild.remove();
    const x = [...hist.t.map((t) => (t - now) / 60), 0];
    d.sensors.forEach((s, i) => {
      let box = list.children[i];
      if (!box || box.dataset.sensor !== s.name) {
        const fresh = document.createElement("article");
        fresh.className = "sensor";
        fresh.innerHTML =
          "<h3><span class='name'></span> <span class='muted driver'></span></h3>" +
          "<p class='counts muted'><span class='reads'></span> reads · <span class='failures'></span> failures · last success <span class='age'></span></p>" +
          "<p class='error err' hidden></p><div class='fields'></div>";
        fresh.dataset.sensor = s.name;
        if (box) box.replaceWith(fresh);
        else list.append(fresh);
        box = fresh;
      }
      setText(box.querySelector(".name"), s.name);
      setText(box.querySelector(".driver"), s.driver ?? "");
      setText(box.querySelector(".reads"), int(s.reads));
      const failures = box.querySelector(".failures");
      setText(failures, int(s.failures));
      setClass(failures, `failures${s.failures > 0 ? " err" : ""}`);
      setText(box.querySelector(".age"), ago(s.last_success_age_s));
      const err = box.querySelector(".error");
      err.hidden = !s.last_error;
      setText(err, s.last_error ? `last error: ${s.last_error}` : "");
      const cell = box.querySelector(".fields");
      const fields = Object.keys(s.values);
      if (cell.dataset.fields !== fields.join("|")) {
        cell.replaceChildren();
        for (const f of fields) {
          const wrap = document.createElement("figure");
          wrap.dataset.field = f;
          wrap.innerHTML =
            "<div><span class='muted'></span> <strong class='v'></strong></div><div class='spark' aria-hidden='true'></div><figcaption class='sr-only'></figcaption>";
          wrap.querySelector(".muted").textContent = f;
          cell.append(wrap);
          resize.observe(wrap.querySelector(".spark"));
        }
        cell.dataset.fields = fields.join("|");
        if (fields.length === 0) cell.textContent = "no reading yet";
      }
      for (const f of fields) {
        const wrap = cell.querySelector(`figure[data-field="${CSS.escape(f)}"]`);
        setText(wrap.querySelector(".v"), value(s.values[f]));
        const v = s.values[f];
        const past = hist.sensors.get(`${s.name}\u0000${f}`) ?? new Array(hist.t.length).fill(null);
        if (typeof v !== "string") {
          const ys = [...past, typeof v === "boolean" ? Number(v) : v];
          plot(wrap.querySelector(".spark"), `s:${s.name}:${f}`, [f], [x, ys], { spark: true, height: 36 });
          setText(wrap.querySelector("figcaption"), describe(`${s.name} ${f}`, x, ys, value));
        }
      }
    });
  }

  function renderClock(d) {
    const c = d.clock;
    put("clock.state", c.synced ? "synchronised" : "not synchronised");
    for (const el of bound.get("clock.state") ?? []) setClass(el, c.synced ? "state-ok" : "state-degraded");
    put("clock.source", c.source);
    put("clock.quality", c.quality);
    put(
      "clock.error",
      c.error_bound_ms === null
        ? "unknown"
        : `± ${int(c.error_bound_ms)} ms${c.crystal_ppm === null ? "" : ` (crystal ${num(c.crystal_ppm)} ppm)`}`,
    );
    put("clock.anchors", c.anchors === null ? "–" : int(c.anchors));
    put("clock.anchor", c.last_anchor_age_s === null ? "none this boot" : ago(c.last_anchor_age_s));
    put(
      "clock.rtc",
      c.rtc_path === "none"
        ? "none"
        : `${c.rtc_path}${c.rtc_offset_ms === null ? "" : `, offset ${int(c.rtc_offset_ms)} ms`}`,
    );
    put("clock.boot", c.boot_id);
  }

  function renderVitals(d) {
    const v = d.vitals;
    put("vitals.temp", v.soc_temperature_c === null ? "unknown" : `${v.soc_temperature_c.toFixed(1)} °C`);
    put("vitals.throttleNow", v.throttle === null ? "unknown" : v.throttle.now.join(", ") || "none");
    put("vitals.throttleBoot", v.throttle === null ? "unknown" : v.throttle.since_boot.join(", ") || "none");
    put(
      "vitals.uv",
      v.under_voltage === null ? "unknown" : v.under_voltage ? "YES — check the power supply" : "no",
    );
    put("vitals.data", diskFree(v.data_disk));
    put("vitals.root", diskFree(v.root_disk));
    put("process.rss", bytes(d.process.rss_bytes));
  }

  // ---- polling ----
  let timer;
  let busy = false;
  let failures = 0;
  async function poll() {
    timer = undefined;
    if (busy) return;
    busy = true;
    try {
      const url = lastT === undefined ? "/page.json" : `/page.json?since=${lastT}`;
      const res = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (res.status === 401) {
        location.reload();
        return;
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const d = await res.json();
      const started = performance.now();
      append(d.history);
      const now = d.now_mono_s;
      renderHeader(d);
      renderQueue(d, now);
      renderFlow(d, now);
      renderBroker(d);
      renderSensors(d, now);
      renderClock(d);
      renderVitals(d);
      failures = 0;
      const upd = $("#updated");
      setText(upd, `updated ${new Date().toLocaleTimeString("en-GB")}`);
      upd.dataset.polls = String(Number(upd.dataset.polls ?? "0") + 1);
      // how long this update took to render (read by the benchmark)
      upd.dataset.renderMs = (performance.now() - started).toFixed(2);
    } catch (e) {
      failures++;
      setText($("#updated"), `cannot reach the device (${e.message}); retrying`);
    } finally {
      busy = false;
    }
    schedule();
  }
  function schedule() {
    if (document.hidden || timer !== undefined) return;
    timer = setTimeout(poll, failures ? Math.min(10000, POLL_MS * 2 ** failures) : POLL_MS);
  }
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      clearTimeout(timer);
      timer = undefined;
    } else if (timer === undefined) poll();
  });
  poll();
})();
