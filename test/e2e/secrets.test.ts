/**
 * Issue #12, item 3: no secret reaches the journal. A full run of the compiled binary — connect,
 * ingest with a token, a reload, a broker outage, shutdown — and every line it wrote is searched
 * for the broker password and both tokens.
 */
import { describe, expect, it } from "vitest";
import { DeviceRun } from "../support/device.ts";
import { binaryMissing, type Flavor } from "../support/fieldrelay.ts";
import { MOSQUITTO, missing } from "../support/tools.ts";

const flavor: Flavor = "x64";
const skip = binaryMissing(flavor) ?? missing(MOSQUITTO);

const PASSWORD = "pw-Zq81-in-the-url";
const INGEST_TOKEN = "ingest-token-Kx93aa";
const HEALTH_TOKEN = "health-token-Lp27bb";

describe.skipIf(skip)("secrets are never logged", () => {
  const device = new DeviceRun("fr-secrets-", flavor);

  it("keeps the URL password and the tokens out of every line of a full run", async () => {
    const broker = await device.startBroker();
    const config = await device.writeConfig({
      id: "pi-secret",
      mqtt: {
        url: `mqtt://fieldrelay:${PASSWORD}@127.0.0.1:${broker.port}`,
        min_backoff_s: 0.2,
        max_backoff_s: 1,
      },
      extra: { log: { level: "debug" } },
    });
    const { ingestPort: ingest, healthPort: health } = config;
    const env = { FIELDRELAY_INGEST_TOKEN: INGEST_TOKEN, FIELDRELAY_HEALTH_TOKEN: HEALTH_TOKEN };
    const p = device.run(config.path, { env });
    await p.waitForLog((l) => l.msg === "connected to broker");
    const res = await fetch(`http://127.0.0.1:${ingest}/v1/readings`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${INGEST_TOKEN}` },
      body: JSON.stringify({ stream: "env", values: { v: 1 } }),
    });
    expect(res.status).toBe(201);
    // A wrong token is logged as refused; the token it carried is not.
    await fetch(`http://127.0.0.1:${health}/health`, { headers: { authorization: `Bearer ${PASSWORD}` } });
    p.kill("SIGHUP");
    await p.waitForLog((l) => l.msg === "config reloaded; restarting the runtime with it");
    await p.waitForLog((l) => l.msg === "fieldrelay ready" && p.logs.indexOf(l) > 5);
    await broker.stop();
    await p.waitForLog((l) => l.msg === "broker unavailable; readings stay queued");
    p.kill("SIGTERM");
    expect(await p.exited).toBe(0);

    const all = p.stdout + p.stderr;
    expect(all).toContain("connected to broker");
    for (const secret of [PASSWORD, INGEST_TOKEN, HEALTH_TOKEN]) expect(all).not.toContain(secret);
    expect(all).toContain("[redacted]");
  });
});
