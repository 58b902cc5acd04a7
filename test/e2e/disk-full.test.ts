/**
 * A full data partition, met by the compiled binary under ingest load. The queue lives on a small
 * tmpfs; another process (a growing log) keeps taking every free block for at least 60 s
 * (FIELDRELAY_E2E_FULL_S) while clients keep posting protected readings and the broker is down.
 *
 * The promise, checked reading by reading: every reading answered 201 is delivered once the
 * broker is back, and no reading of a body answered 503 is ever published (all or nothing). While
 * full, fieldrelay does not crash or hang: every request is answered, /health says unhealthy with
 * the reason, the watchdog keeps being fed (a restart would not make room); when space comes back
 * it stores again by itself.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterAll, describe, expect, it } from "vitest";
import { binaryMissing, spawn, Workspace } from "../support/fieldrelay.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { freePort } from "../support/ports.ts";
import { cannotMount, Tmpfs } from "../support/tmpfs.ts";
import { MOSQUITTO, missing } from "../support/tools.ts";
import { UnixDgramServer } from "../support/unix-dgram.ts";

const skip = binaryMissing("x64") ?? missing(MOSQUITTO) ?? cannotMount();
const FULL_S = Number(process.env.FIELDRELAY_E2E_FULL_S ?? 60);
const CLIENTS = 4;
const LINES = 10;

describe.skipIf(skip)("compiled x64 binary: the data partition stays full under ingest load", () => {
  const ws = new Workspace();
  let fs: Tmpfs | undefined;
  let broker: MosquittoBroker | undefined;
  const notify = skip ? undefined : UnixDgramServer.path();
  afterAll(async () => {
    fs?.unmount();
    notify?.close();
    await broker?.close();
    ws.cleanup();
  });

  it(`answers every request, 201 only for what it stored, for ${FULL_S} s full; then delivers every 201`, {
    timeout: (FULL_S + 150) * 1000,
  }, async () => {
    const data = join(ws.dir, "small-data");
    mkdirSync(data, { recursive: true });
    fs = Tmpfs.mount(data, "3m");
    broker = await MosquittoBroker.start({ persistent: true });
    const subOptions = { clientId: "e2e-full", clean: false, reconnectPeriod: 200 } as const;
    const first = await mqtt.connectAsync(broker.url, subOptions);
    await first.subscribeAsync("fieldrelay/pi-full/+", { qos: 1 });
    await first.endAsync();
    await broker.stop("SIGTERM");
    const ingestPort = await freePort();
    const healthPort = await freePort();
    const config = ws.writeConfig({
      device: { id: "pi-full" },
      mqtt: { url: broker.url, min_backoff_s: 0.2, max_backoff_s: 1 },
      queue: { path: join(data, "queue.db"), commit_interval_ms: 200, min_free_disk_mb: 0 },
      ingest: { listen: `127.0.0.1:${ingestPort}` },
      health: { listen: `127.0.0.1:${healthPort}` },
      rtc: { mode: "none" },
    });
    const socket = notify as UnixDgramServer;
    const start = () =>
      spawn("x64", ["run", "-c", config], {
        env: { NOTIFY_SOCKET: socket.address, WATCHDOG_USEC: "2000000" },
      });
    let child = start();
    try {
      await child.waitForLog((l) => l.msg === "fieldrelay ready", 60_000);

      // Each reading carries a unique id; the answer to its body says what became of it.
      const acknowledged = new Set<string>(); // ids answered 201
      const refused = new Set<string>(); // ids of bodies answered 503
      let nextId = 0;
      let restarting = false;
      let slowest = 0;
      const statuses: Record<number, number> = {};
      const post = async () => {
        const ids = Array.from({ length: LINES }, () => `r${nextId++}`);
        const body = ids
          .map((id) => JSON.stringify({ stream: "log", priority: 9, values: { id, line: "x".repeat(120) } }))
          .join("\n");
        const started = performance.now();
        // Bounded: a request that gets no answer within 30 s fails the test (fieldrelay hung).
        const r = await fetch(`http://127.0.0.1:${ingestPort}/v1/readings`, {
          method: "POST",
          headers: { "content-type": "application/x-ndjson" },
          body,
          signal: AbortSignal.timeout(30_000),
        }).catch((error: Error) => {
          // Only while it restarts: nobody listens (refused: never reached it), or the stopping
          // server closed the connection (its fate unknown: counted neither way). Anything else,
          // or at any other time (a timeout: it hung), fails the test.
          if (!restarting) throw error;
          if (/ECONNREFUSED|Unable to connect|ConnectionRefused/i.test(String(error))) {
            for (const id of ids) refused.add(id);
            return undefined;
          }
          if (/ECONNRESET|socket connection was closed/i.test(String(error))) return undefined;
          throw error;
        });
        if (!r) return;
        slowest = Math.max(slowest, performance.now() - started);
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        expect([201, 503]).toContain(r.status);
        for (const id of ids) (r.status === 201 ? acknowledged : refused).add(id);
        await r.arrayBuffer();
      };
      let loading = true;
      const clientErrors: unknown[] = [];
      const clients = Array.from({ length: CLIENTS }, async () => {
        while (loading) {
          try {
            await post();
          } catch (error) {
            clientErrors.push(error); // surfaced below, where it happened, not as a late rejection
            return;
          }
          await Bun.sleep(100);
        }
      });

      await Bun.sleep(3000);
      const beforeFull = acknowledged.size;
      expect(beforeFull).toBeGreaterThan(0);
      // Another process takes every free block, again and again (the queue's checkpoints give
      // blocks back, and a growing log would take them).
      const fullUntil = Date.now() + FULL_S * 1000;
      let healthSeen: { status: number; body: string } | undefined;
      const watchdogDuringFull: string[] = [];
      socket.drain();
      let restarted = false;
      while (Date.now() < fullUntil) {
        fs.fill();
        await Bun.sleep(1000);
        if (!restarted && Date.now() > fullUntil - FULL_S * 750) {
          // An operator (or systemd) restarts it while the disk is full: it stops cleanly and
          // starts again on the full disk (nothing at start needs a new block).
          restarted = true;
          restarting = true;
          const stopping = child;
          stopping.kill("SIGTERM");
          expect(await stopping.exited).toBe(0);
          fs.fill();
          child = start();
          await child.waitForLog((l) => l.msg === "fieldrelay ready", 60_000);
          await Bun.sleep(500); // requests sent before READY drain out
          restarting = false;
        }
        if (Date.now() > fullUntil - FULL_S * 500 && !healthSeen) {
          const h = await fetch(`http://127.0.0.1:${healthPort}/health`);
          const body = await h.text();
          if (body.includes("SQLITE_FULL")) healthSeen = { status: h.status, body };
        }
        watchdogDuringFull.push(...socket.drain());
        expect(child.proc.exitCode).toBeNull(); // never crashes
        expect(clientErrors).toEqual([]);
      }
      const refusedWhileFull = statuses[503] ?? 0;
      expect(refusedWhileFull).toBeGreaterThan(0);
      expect(restarted).toBe(true);
      expect(healthSeen?.body).toMatch(/unhealthy/);
      expect(healthSeen?.body).toContain("SQLITE_FULL");
      // Fed all along: a restart would not make room, only drop what RAM holds.
      expect(watchdogDuringFull.filter((m) => m === "WATCHDOG=1").length).toBeGreaterThanOrEqual(FULL_S / 2);

      // Space comes back: stores again by itself.
      fs.unfill();
      const ackedAtRelease = acknowledged.size;
      const resumed = Date.now() + 20_000;
      while (acknowledged.size < ackedAtRelease + 20 * LINES) {
        if (Date.now() > resumed) throw new Error("no 201 after space came back");
        await Bun.sleep(200);
      }
      loading = false;
      await Promise.all(clients);
      expect(clientErrors).toEqual([]);

      // Broker back: every 201 is delivered, nothing of a 503 body is.
      const received = new Set<string>();
      await broker.start();
      const sub = mqtt.connect(broker.url, subOptions);
      const connected = new Promise<void>((resolve) => sub.once("connect", () => resolve()));
      sub.on("message", (topic, payload) => {
        if (topic.endsWith("/status")) return;
        received.add((JSON.parse(payload.toString()) as { values: { id: string } }).values.id);
      });
      await connected;
      const deadline = Date.now() + 90_000;
      while ([...acknowledged].some((id) => !received.has(id))) {
        if (Date.now() > deadline) {
          writeFileSync("/tmp/disk-full-e2e.log", child.stdout + child.stderr);
          const missingIds = [...acknowledged].filter((id) => !received.has(id));
          throw new Error(
            `${missingIds.length} of ${acknowledged.size} acknowledged readings missing; see /tmp/disk-full-e2e.log`,
          );
        }
        await Bun.sleep(200);
      }
      await Bun.sleep(1000); // anything published late would show up now
      expect([...refused].filter((id) => received.has(id))).toEqual([]);
      expect(child.logs.filter((l) => String(l.msg).endsWith("evicted readings"))).toEqual([]);
      console.log(
        JSON.stringify({
          fullS: FULL_S,
          answered: statuses,
          acknowledged: acknowledged.size,
          refusedReadings: refused.size,
          slowestAnswerMs: Math.round(slowest),
        }),
      );
      await sub.endAsync();
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
