/**
 * Issue #12, items 4 and 5: the local HTTP servers of the compiled binary refuse what a browser
 * (or a DNS-rebinding page) can send, answer every error with a short JSON body, and serve
 * HTTP/1.0 clients that send no Host header.
 */
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  binaryMissing,
  type Flavor,
  type RunningFieldrelay,
  run,
  spawn,
  Workspace,
} from "../support/fieldrelay.ts";
import { freePort } from "../support/ports.ts";

const flavor: Flavor = "x64";
const skip = binaryMissing(flavor);

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One request written byte for byte (fetch would add or fix headers), read until close. */
function raw(port: number, request: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(request));
    let data = "";
    socket.setEncoding("utf8");
    socket.on("data", (d) => {
      data += d;
    });
    socket.on("error", reject);
    socket.on("end", () => {
      const [head = "", ...rest] = data.split("\r\n\r\n");
      const [statusLine = "", ...lines] = head.split("\r\n");
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const at = l.indexOf(":");
        headers[l.slice(0, at).toLowerCase()] = l.slice(at + 1).trim();
      }
      resolve({ status: Number(statusLine.split(" ")[1]), headers, body: rest.join("\r\n\r\n") });
    });
  });
}

function post(
  port: number,
  headers: Record<string, string>,
  body: string,
  version = "1.1",
): Promise<RawResponse> {
  const lines = [
    `POST /v1/readings HTTP/${version}`,
    "Connection: close",
    `Content-Length: ${Buffer.byteLength(body)}`,
  ];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return raw(port, `${lines.join("\r\n")}\r\n\r\n${body}`);
}

const READING = JSON.stringify({ stream: "env", values: { temperature_c: 21.5 } });
const JSON_CT = { "Content-Type": "application/json" };

function expectJsonError(r: RawResponse, status: number, pattern: RegExp): void {
  expect(r.status, r.body.slice(0, 300)).toBe(status);
  expect(r.headers["content-type"]).toMatch(/^application\/json/);
  expect(r.body.length).toBeLessThan(1000);
  expect((JSON.parse(r.body) as { error: string }).error).toMatch(pattern);
}

describe.skipIf(skip)("HTTP hardening of ingest and health (loopback, no token)", () => {
  const ws = new Workspace("fr-http-");
  let proc: RunningFieldrelay;
  let ingest: number;
  let health: number;
  beforeAll(async () => {
    ingest = await freePort();
    health = await freePort();
    const config = ws.writeConfig({
      device: { id: "pi-http" },
      mqtt: { url: `mqtt://127.0.0.1:${await freePort()}` },
      queue: { path: ws.queuePath },
      ingest: { listen: `127.0.0.1:${ingest}` },
      health: { listen: `127.0.0.1:${health}` },
      rtc: { mode: "none" },
    });
    proc = spawn(flavor, ["run", "-c", config]);
    await proc.waitForLog((l) => l.msg === "fieldrelay ready");
  });
  afterAll(async () => {
    proc.kill("SIGTERM");
    await proc.exited;
    ws.cleanup();
  });

  it("accepts a plain local JSON post (the baseline)", async () => {
    expect((await post(ingest, { Host: `127.0.0.1:${ingest}`, ...JSON_CT }, READING)).status).toBe(201);
    expect(
      (await post(ingest, { Host: "localhost", "Content-Type": "application/x-ndjson" }, READING)).status,
    ).toBe(201);
  });

  it("refuses a post carrying a browser Origin (403)", async () => {
    const r = await post(ingest, { Host: "127.0.0.1", Origin: "http://evil.example", ...JSON_CT }, READING);
    expectJsonError(r, 403, /Origin/);
  });

  it("refuses bodies a browser form can send without a preflight (415)", async () => {
    for (const ct of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      expectJsonError(
        await post(ingest, { Host: "127.0.0.1", "Content-Type": ct }, READING),
        415,
        /application\/json/,
      );
    }
    expectJsonError(await post(ingest, { Host: "127.0.0.1" }, READING), 415, /Content-Type/);
  });

  it("refuses a Host that is not a loopback name or address (DNS rebinding) on both servers", async () => {
    expectJsonError(await post(ingest, { Host: "evil.example", ...JSON_CT }, READING), 403, /Host/);
    const r = await raw(
      health,
      "GET /health HTTP/1.1\r\nHost: evil.example:9108\r\nConnection: close\r\n\r\n",
    );
    expectJsonError(r, 403, /Host/);
  });

  it("serves HTTP/1.0 without a Host header on both servers", async () => {
    expect((await post(ingest, JSON_CT, READING, "1.0")).status).toBe(201);
    const r = await raw(health, "GET /health HTTP/1.0\r\n\r\n");
    expect(r.status).toBeLessThan(500);
    expect(JSON.parse(r.body)).toHaveProperty("status");
  });

  it("answers every error with a short JSON body", async () => {
    expectJsonError(await raw(health, "GET /nope HTTP/1.0\r\n\r\n"), 404, /health/);
    expectJsonError(await raw(health, "POST /health HTTP/1.0\r\nContent-Length: 0\r\n\r\n"), 405, /GET/);
    expectJsonError(await raw(ingest, "GET /v1/readings HTTP/1.0\r\n\r\n"), 405, /POST/);
    expectJsonError(await raw(ingest, "GET /../etc HTTP/1.0\r\n\r\n"), 404, /readings/);
  });
});

describe.skipIf(skip)("a non-loopback ingest listener needs a token", () => {
  const ws = new Workspace("fr-http-token-");
  afterAll(() => ws.cleanup());

  it("is refused by check-config and run without ingest.token, naming the key", async () => {
    const config = ws.writeConfig({
      device: { id: "pi-http" },
      queue: { path: ws.queuePath },
      ingest: { listen: `0.0.0.0:${await freePort()}` },
      health: { listen: "" },
    });
    const check = await run(flavor, ["check-config", "-c", config]);
    expect(check.code).not.toBe(0);
    expect(check.stdout + check.stderr).toMatch(/ingest\.token/);
    const started = await run(flavor, ["run", "-c", config], { timeoutMs: 20_000 });
    expect(started.code).not.toBe(0);
    expect(started.stderr).toMatch(/ingest\.token/);
    expect(started.stderr).not.toMatch(/\n\s+at /); // one line, no stack trace
  });

  it("with a token: requires it, and then any Host is fine", async () => {
    const port = await freePort();
    const token = "t0ken-for-the-ingest-api";
    const config = ws.writeConfig({
      device: { id: "pi-http" },
      mqtt: { url: `mqtt://127.0.0.1:${await freePort()}` },
      queue: { path: ws.queuePath },
      ingest: { listen: `0.0.0.0:${port}` },
      health: { listen: "" },
      rtc: { mode: "none" },
    });
    const proc = spawn(flavor, ["run", "-c", config], { env: { FIELDRELAY_INGEST_TOKEN: token } });
    try {
      await proc.waitForLog((l) => l.msg === "fieldrelay ready");
      expectJsonError(await post(port, { Host: "pi.lan", ...JSON_CT }, READING), 401, /token/);
      const ok = await post(port, { Host: "pi.lan", Authorization: `Bearer ${token}`, ...JSON_CT }, READING);
      expect(ok.status, ok.body).toBe(201);
    } finally {
      proc.kill("SIGTERM");
      await proc.exited;
    }
    expect(proc.stdout).not.toContain(token);
  });
});
