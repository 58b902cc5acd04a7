import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import type { PageData } from "../../src/health/page/model.ts";
import type { RuntimeStatus } from "../../src/runtime/status.ts";
import { HealthServers } from "../support/health-server.ts";
import { fakeStatus } from "../support/runtime-status.ts";

const TOKEN = "status-page-token-0123456789";
const servers = new HealthServers({ tempMilliC: 52_250, throttled: "0x50005", voltAlarm: "0" });
const serve = (status: () => RuntimeStatus, token?: string) =>
  servers.serve(status, { token, deviceId: "pi-page" });

const form = (token: string) => ({
  method: "POST",
  redirect: "manual" as const,
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams({ token }).toString(),
});

describe("Status page on loopback without a token", () => {
  it("serves one HTML document with a strict Content-Security-Policy", async () => {
    const { url } = serve(() => fakeStatus());
    const res = await fetch(url("/"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("content-encoding")).toBe("gzip"); // fetch asks for it and decodes it
    const html = await res.text();
    expect(html).toContain("<title>fieldrelay status</title>");
    expect(html).toContain("uPlot");
  });

  it("reports the same verdict as /health and the queue by priority in /page.json", async () => {
    const { url } = serve(() =>
      fakeStatus({
        publisher: { connected: false, lastError: "connect ECONNREFUSED" },
        queue: { rows: 12, rowsByPriority: { 9: 2, 5: 10 } },
      }),
    );
    const health = (await (await fetch(url("/health"))).json()) as { status: string };
    const d = (await (await fetch(url("/page.json"))).json()) as PageData;
    expect(d.health.status).toBe(health.status);
    expect(d.device).toBe("pi-page");
    expect(d.queue).toMatchObject({ rows: 12, by_priority: { "5": 10, "9": 2 } });
    expect(d.broker).toMatchObject({ connected: false, last_error: "connect ECONNREFUSED" });
    expect(d.vitals.soc_temperature_c).toBe(52.25);
    expect(d.vitals.throttle?.now).toEqual(["under-voltage", "throttled"]);
    expect(d.queue.dead_lettered).toBe(0); // #12 is merged: the queue always counts them
  });

  it("sends the whole hour first, then only rows newer than the client's last, with rates", async () => {
    let captured = 1000;
    const { url, step } = serve(() => fakeStatus({ queue: { captured, delivered: 0 } }));
    for (let i = 0; i < 3; i++) {
      captured += 50;
      step();
    }
    const all = (await (await fetch(url("/page.json"))).json()) as PageData;
    expect(all.history.t).toHaveLength(4);
    expect(all.history.captured_per_s).toEqual([null, 10, 10, 10]);
    expect(all.rates.captured_per_s).toBe(10);
    captured += 100;
    step();
    const last = all.history.t.at(-1);
    const newer = (await (await fetch(url(`/page.json?since=${last}`))).json()) as PageData;
    expect(newer.history.t).toEqual([last! + 5]);
    expect(newer.history.captured_per_s).toEqual([20]);
    expect((await fetch(url("/page.json?since=nope"))).status).toBe(400);
  });
});

describe("Status page bytes on the wire", () => {
  it("answers /page.json gzipped when the client takes it, and plain when it does not", async () => {
    const { url } = serve(() => fakeStatus());
    const gz = await fetch(url("/page.json"), {
      headers: { "accept-encoding": "gzip" },
      decompress: false,
    } as RequestInit);
    expect(gz.headers.get("content-encoding")).toBe("gzip");
    expect(gz.headers.get("vary")).toBe("accept-encoding");
    const packed = new Uint8Array(await gz.arrayBuffer());
    const plain = await fetch(url("/page.json"), { headers: { "accept-encoding": "identity" } });
    expect(plain.headers.get("content-encoding")).toBeNull();
    expect(plain.headers.get("content-type")).toBe("application/json");
    const text = await plain.text();
    expect(JSON.parse(new TextDecoder().decode(Bun.gunzipSync(packed)))).toMatchObject({ device: "pi-page" });
    expect(packed.byteLength).toBeLessThan(text.length / 2);
  });
});

describe("Status page with health.token", () => {
  it("shows the sign-in form instead of the page, and refuses the data, without credentials", async () => {
    const { url } = serve(() => fakeStatus(), TOKEN);
    const page = await fetch(url("/"));
    expect(page.status).toBe(401);
    const html = await page.text();
    expect(html).toContain('action="/login"');
    expect(html).not.toContain("uPlot");
    const data = await fetch(url("/page.json"));
    expect(data.status).toBe(401);
    expect(await data.json()).toMatchObject({ error: "unauthorized" });
  });

  it("never accepts the token in the URL", async () => {
    const { url } = serve(() => fakeStatus(), TOKEN);
    expect((await fetch(url(`/page.json?token=${TOKEN}`))).status).toBe(401);
    expect((await fetch(url(`/?token=${TOKEN}`))).status).toBe(401);
  });

  it("signs in with the token in a POST body: a session cookie opens the page and its data", async () => {
    const { url } = serve(() => fakeStatus(), TOKEN);
    const wrong = await fetch(url("/login"), form("not-the-token"));
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("set-cookie")).toBeNull();
    const ok = await fetch(url("/login"), form(TOKEN));
    expect(ok.status).toBe(303);
    expect(ok.headers.get("location")).toBe("/");
    const setCookie = ok.headers.get("set-cookie") ?? "";
    expect(setCookie).toMatch(/^fr_session=\d+\.[\w-]{43}; Path=\/; HttpOnly; SameSite=Strict/);
    expect(setCookie).not.toContain(TOKEN);
    const cookie = setCookie.split(";")[0]!;
    expect((await fetch(url("/"), { headers: { cookie } })).status).toBe(200);
    expect((await fetch(url("/page.json"), { headers: { cookie } })).status).toBe(200);
    // the cookie opens the page only: /health and /metrics still need the bearer token
    expect((await fetch(url("/metrics"), { headers: { cookie } })).status).toBe(401);
  });

  it("accepts the bearer token like /health does", async () => {
    const { url } = serve(() => fakeStatus(), TOKEN);
    const res = await fetch(url("/page.json"), { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
  });

  it("answers a wrong method or an oversized sign-in with a 4xx, not a stack trace", async () => {
    const { url } = serve(() => fakeStatus(), TOKEN);
    const put = await fetch(url("/page.json"), { method: "DELETE" });
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")).toBe("GET, HEAD");
    const big = await fetch(url("/login"), form("x".repeat(10_000)));
    expect(big.status).toBe(413);
    const json = await fetch(url("/login"), {
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json" },
    });
    expect(json.status).toBe(415);
  });
});

/** One HTTP/1.1 request from a chosen loopback source address (fetch cannot pick one). */
function requestFrom(
  localAddress: string,
  port: number,
  request: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, localAddress }, () => socket.write(request));
    let data = "";
    socket.setEncoding("utf8");
    socket.on("data", (d) => {
      data += d;
    });
    socket.on("error", reject);
    socket.on("end", () => resolve({ status: Number(data.split(" ")[1]), text: data }));
  });
}

describe("Token guessing on the health listener (rate limit per client)", () => {
  const wrong = (i: number) => form(`guess-${i}-not-the-token`);

  it("refuses a client with 429 JSON and Retry-After after 5 wrong tokens, even the right one, until it has waited", async () => {
    const { url, step } = serve(() => fakeStatus(), TOKEN);
    for (let i = 0; i < 5; i++) expect((await fetch(url("/login"), wrong(i))).status).toBe(401);
    const limited = await fetch(url("/login"), wrong(5));
    expect(limited.status).toBe(429);
    expect(limited.headers.get("content-type")).toContain("application/json");
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(await limited.json()).toMatchObject({ error: expect.stringMatching(/too many wrong tokens/) });
    // Guessing right while locked out proves nothing: the token is not even compared.
    expect((await fetch(url("/login"), form(TOKEN))).status).toBe(429);
    step(retryAfter * 1000);
    const ok = await fetch(url("/login"), form(TOKEN));
    expect(ok.status).toBe(303);
  });

  it("doubles the wait on every wrong token after the free ones", async () => {
    const { url, step } = serve(() => fakeStatus(), TOKEN);
    for (let i = 0; i < 5; i++) await fetch(url("/login"), wrong(i));
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      const locked = await fetch(url("/login"), wrong(10 + i));
      expect(locked.status).toBe(429);
      const s = Number(locked.headers.get("retry-after"));
      waits.push(s);
      step(s * 1000);
      expect((await fetch(url("/login"), wrong(20 + i))).status).toBe(401);
    }
    expect(waits).toEqual([1, 2, 4, 8]);
  });

  it("counts wrong Bearer tokens on /health, /metrics and /page.json toward the same limit", async () => {
    const { url } = serve(() => fakeStatus(), TOKEN);
    const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });
    expect((await fetch(url("/health"), bearer("a-wrong-token"))).status).toBe(401);
    expect((await fetch(url("/metrics"), bearer("b-wrong-token"))).status).toBe(401);
    expect((await fetch(url("/page.json"), bearer("c-wrong-token"))).status).toBe(401);
    expect((await fetch(url("/login"), wrong(1))).status).toBe(401);
    expect((await fetch(url("/health"), bearer("d-wrong-token"))).status).toBe(401);
    const limited = await fetch(url("/health"), bearer(TOKEN));
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });

  it("treats every loopback source address as one client (a local process can pick any 127.x address)", async () => {
    const { url } = serve(() => fakeStatus(), TOKEN);
    const port = Number(new URL(url("/")).port);
    const body = new URLSearchParams({ token: "wrong-from-elsewhere" }).toString();
    const post = (from: string) =>
      requestFrom(
        from,
        port,
        `POST /login HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      );
    for (let i = 0; i < 5; i++) expect((await post(`127.0.0.${2 + i}`)).status).toBe(401);
    expect((await post("127.0.0.99")).status).toBe(429);
    expect((await fetch(url("/login"), form(TOKEN))).status).toBe(429);
  });

  it("lets a signed-in browser keep its session, and starts over after a right token", async () => {
    const { url, step } = serve(() => fakeStatus(), TOKEN);
    const ok = await fetch(url("/login"), form(TOKEN));
    const cookie = (ok.headers.get("set-cookie") ?? "").split(";")[0]!;
    for (let i = 0; i < 4; i++) await fetch(url("/login"), wrong(i));
    expect((await fetch(url("/login"), form(TOKEN))).status).toBe(303); // resets the count
    for (let i = 0; i < 5; i++) expect((await fetch(url("/login"), wrong(i))).status).toBe(401);
    expect((await fetch(url("/login"), wrong(9))).status).toBe(429);
    // the session cookie is not a guess: the page and its data stay open while the address waits
    expect((await fetch(url("/page.json"), { headers: { cookie } })).status).toBe(200);
    step(1000);
    expect((await fetch(url("/login"), form(TOKEN))).status).toBe(303);
  });
});
