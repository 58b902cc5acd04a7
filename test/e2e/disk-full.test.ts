/**
 * A full data partition, met by the compiled binary: the queue lives on a tmpfs of a few hundred
 * KiB, the broker is down, and protected readings arrive through the ingest API until a commit
 * fails with SQLITE_FULL. The readings are held in RAM (nothing protected is evicted), the
 * database writer stops making progress, so WATCHDOG=1 stops and STATUS says why — systemd would
 * restart the service. When space comes back (the tmpfs is grown), commits resume, the watchdog
 * is fed again, every held reading is committed, and once the broker is back every seq the
 * ingest API acknowledged is delivered.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterAll, describe, expect, it } from "vitest";
import { binaryMissing, spawn, Workspace } from "../support/fieldrelay.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { freePort } from "../support/ports.ts";
import { MOSQUITTO, missing } from "../support/tools.ts";
import { UnixDgramServer } from "../support/unix-dgram.ts";

function canMountTmpfs(): string | undefined {
  if (process.getuid?.() === 0) return undefined;
  const reason = "mounting a tmpfs needs root";
  if (process.env.CI === "true") throw new Error(reason);
  return reason;
}

const skip = binaryMissing("x64") ?? missing(MOSQUITTO) ?? canMountTmpfs();

describe.skipIf(skip)("compiled x64 binary: the data partition fills up, then has room again", () => {
  const ws = new Workspace();
  const data = join(ws.dir, "small-data");
  let mounted = false;
  let broker: MosquittoBroker | undefined;
  const notify = skip ? undefined : UnixDgramServer.path();
  afterAll(async () => {
    if (mounted) Bun.spawnSync(["umount", "-l", data]);
    notify?.close();
    await broker?.close();
    ws.cleanup();
  });

  it("stops feeding the watchdog while commits fail, loses nothing held in RAM, and recovers", async () => {
    mkdirSync(data, { recursive: true });
    const mount = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=384k", "tmpfs", data]);
    expect(mount.exitCode, mount.stderr.toString()).toBe(0);
    mounted = true;
    // A persistent subscriber session on a persistent broker: it collects what is published while
    // it is not yet reconnected after the outage.
    broker = await MosquittoBroker.start({ persistent: true });
    const subOptions = { clientId: "e2e-full", clean: false, reconnectPeriod: 200 } as const;
    const first = await mqtt.connectAsync(broker.url, subOptions);
    await first.subscribeAsync("fieldrelay/pi-full/+", { qos: 1 });
    await first.endAsync();
    await broker.stop("SIGTERM");
    const ingestPort = await freePort();
    const config = ws.writeConfig({
      device: { id: "pi-full" },
      mqtt: { url: broker.url, min_backoff_s: 0.2, max_backoff_s: 1 },
      queue: { path: join(data, "queue.db"), commit_interval_ms: 200, min_free_disk_mb: 0 },
      ingest: { listen: `127.0.0.1:${ingestPort}` },
      health: { listen: "" },
      rtc: { mode: "none" },
    });
    const socket = notify as UnixDgramServer;
    const child = spawn("x64", ["run", "-c", config], {
      env: { NOTIFY_SOCKET: socket.address, WATCHDOG_USEC: "2000000" },
    });
    const messages: string[] = [];
    const collect = () => messages.push(...socket.drain());
    try {
      await child.waitForLog((l) => l.msg === "fieldrelay ready", 60_000);

      // Protected readings (priority 9 = protected_priority) until a commit fails for lack of space.
      const acknowledged: number[] = [];
      const pending: Array<Promise<void>> = [];
      const post = (n: number, from: number) => {
        const body = Array.from({ length: n }, (_, i) =>
          JSON.stringify({
            stream: "log",
            priority: 9,
            values: { line: `entry ${from + i} ${"x".repeat(80)}` },
          }),
        ).join("\n");
        return fetch(`http://127.0.0.1:${ingestPort}/v1/readings`, {
          method: "POST",
          headers: { "content-type": "application/x-ndjson" },
          body,
        }).then(async (r) => {
          expect(r.status).toBe(201);
          acknowledged.push(...((await r.json()) as { seqs: number[] }).seqs);
        });
      };
      const full = () =>
        child.logs.some((l) => l.msg === "queue commit failed; holding readings in RAM and retrying");
      for (let batch = 0; batch < 40 && !full(); batch++) {
        pending.push(post(200, batch * 200));
        await Bun.sleep(250);
      }
      expect(full()).toBe(true);
      const failed = child.logs.find(
        (l) => l.msg === "queue commit failed; holding readings in RAM and retrying",
      );
      expect(JSON.stringify(failed)).toMatch(/SQLITE_FULL|full/i);

      // The writer has stalled: within the 20 s window the watchdog stops and STATUS says why.
      const deadline = Date.now() + 40_000;
      while (!messages.some((m) => m.startsWith("STATUS=stalled: database writer made no progress"))) {
        if (Date.now() > deadline)
          throw new Error(`no stall reported; got ${JSON.stringify(messages.slice(-5))}`);
        collect();
        await Bun.sleep(200);
      }
      const atStall = messages.length;
      await Bun.sleep(3000);
      collect();
      expect(messages.slice(atStall)).not.toContain("WATCHDOG=1");

      // Space comes back: commits resume, the watchdog is fed again, every ingest request completes.
      const grow = Bun.spawnSync(["mount", "-o", "remount,size=64m", data]);
      expect(grow.exitCode, grow.stderr.toString()).toBe(0);
      await child.waitForLog((l) => l.msg === "queue commits succeed again", 20_000);
      const resumed = Date.now() + 10_000;
      while (!messages.slice(atStall).includes("WATCHDOG=1")) {
        if (Date.now() > resumed) throw new Error("the watchdog was not fed again after space came back");
        collect();
        await Bun.sleep(200);
      }
      await Promise.all(pending);
      expect(acknowledged.length).toBe(pending.length * 200);
      // Protected readings are never evicted, neither from disk nor from the RAM hold.
      expect(child.logs.filter((l) => String(l.msg).endsWith("evicted readings"))).toEqual([]);

      // Broker back: every acknowledged reading is delivered.
      const received = new Set<number>();
      await broker.start();
      // Handler first: the queued messages of the session arrive right after CONNACK.
      const sub = mqtt.connect(broker.url, subOptions);
      const connected = new Promise<void>((resolve) => sub.once("connect", () => resolve()));
      sub.on("message", (topic, payload) => {
        if (!topic.endsWith("/status")) received.add((JSON.parse(payload.toString()) as { seq: number }).seq);
      });
      await connected;
      const delivered = Date.now() + 60_000;
      while (acknowledged.some((s) => !received.has(s))) {
        if (Date.now() > delivered) {
          writeFileSync("/tmp/disk-full-e2e.log", child.stdout + child.stderr);
          throw new Error(
            `${acknowledged.filter((s) => !received.has(s)).length} of ${acknowledged.length} acknowledged readings missing (received ${received.size}); see /tmp/disk-full-e2e.log`,
          );
        }
        await Bun.sleep(200);
      }
      await sub.endAsync();
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
