/**
 * Issue #12, item 6: SIGHUP reloads the config without dropping a request. Clients post without
 * pause while the compiled binary is sent SIGHUP repeatedly: every request is answered (no reset,
 * no refused connection), every answer is a 201, and every published reading was acknowledged.
 */
import mqtt from "mqtt";
import { describe, expect, it } from "vitest";
import { DeviceRun } from "../support/device.ts";
import { binaryMissing, type Flavor } from "../support/fieldrelay.ts";
import { MOSQUITTO, missing } from "../support/tools.ts";

const flavor: Flavor = "x64";
const skip = binaryMissing(flavor) ?? missing(MOSQUITTO);
const RELOADS = 10;

describe.skipIf(skip)("SIGHUP reload under load", () => {
  const device = new DeviceRun("fr-reload-", flavor);

  it("answers every request across reloads, and publishes only acknowledged readings", async () => {
    const broker = await device.startBroker();
    const config = await device.writeConfig({
      id: "pi-reload",
      mqtt: { min_backoff_s: 0.1, max_backoff_s: 1 },
      commitIntervalMs: 20,
    });
    const { ingestPort: ingest, healthPort: health } = config;
    const published = new Set<number>();
    const sub = await mqtt.connectAsync(broker.url, { clientId: "reload-sub", reconnectPeriod: 0 });
    await sub.subscribeAsync("fieldrelay/pi-reload/+", { qos: 1 });
    sub.on("message", (topic, payload) => {
      if (!topic.endsWith("/status")) published.add((JSON.parse(payload.toString()) as { seq: number }).seq);
    });
    const p = device.run(config.path);
    await p.waitForLog((l) => l.msg === "fieldrelay ready");

    const acknowledged = new Set<number>();
    const problems: string[] = [];
    let healthChecks = 0;
    let running = true;
    const client = async (i: number) => {
      let n = 0;
      while (running) {
        try {
          const res = await fetch(`http://127.0.0.1:${ingest}/v1/readings`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ stream: "load", values: { client: i, n: n++ } }),
            signal: AbortSignal.timeout(20_000),
          });
          const text = await res.text();
          if (res.status !== 201) problems.push(`${res.status}: ${text}`);
          else for (const seq of (JSON.parse(text) as { seqs: number[] }).seqs) acknowledged.add(seq);
          if (i === 0) {
            const h = await fetch(`http://127.0.0.1:${health}/health`, {
              signal: AbortSignal.timeout(20_000),
            });
            if (h.status >= 500 && h.status !== 503) problems.push(`health ${h.status}`);
            healthChecks++;
          }
        } catch (error) {
          problems.push(`request failed: ${(error as Error).message}`);
        }
      }
    };
    const clients = Array.from({ length: 4 }, (_, i) => client(i));
    for (let r = 0; r < RELOADS; r++) {
      await Bun.sleep(300);
      const before = p.logs.filter((l) => l.msg === "fieldrelay ready").length;
      p.kill("SIGHUP");
      await p.waitForLog(
        (l) =>
          l.msg === "fieldrelay ready" &&
          p.logs.filter((x) => x.msg === "fieldrelay ready").indexOf(l) === before,
      );
    }
    await Bun.sleep(300);
    running = false;
    await Promise.all(clients);

    const deadline = Date.now() + 30_000;
    while ([...acknowledged].some((s) => !published.has(s)) && Date.now() < deadline) await Bun.sleep(100);
    p.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    await sub.endAsync();

    expect(problems.slice(0, 5)).toEqual([]);
    expect(acknowledged.size).toBeGreaterThan(50);
    expect(healthChecks).toBeGreaterThan(5);
    expect([...acknowledged].filter((s) => !published.has(s))).toEqual([]);
    expect([...published].filter((s) => !acknowledged.has(s))).toEqual([]);
  });
});
