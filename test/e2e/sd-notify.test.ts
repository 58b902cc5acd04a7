/**
 * The shipped ARM64 binary (under qemu-user) speaking sd_notify to a socket bound by the test, as
 * systemd's notify socket would be: READY=1 once capturing, STATUS= lines, WATCHDOG=1 at half of
 * WATCHDOG_USEC, STOPPING=1 on SIGTERM, then exit 0. (The watchdog's stall rules are covered at
 * module level in test/integration/notify.test.ts; the boot test runs it under real systemd.)
 */
import { afterAll, describe, expect, it } from "vitest";
import { binaryMissing, spawn, Workspace } from "../support/fieldrelay.ts";
import { AARCH64_LIBC, missing, QEMU_AARCH64 } from "../support/tools.ts";
import { UnixDgramServer } from "../support/unix-dgram.ts";

const skip = binaryMissing("arm64") ?? missing(QEMU_AARCH64, AARCH64_LIBC);

describe.skipIf(skip)("compiled ARM64 binary: sd_notify", () => {
  const ws = new Workspace();
  const socket = skip ? undefined : UnixDgramServer.path();
  afterAll(() => {
    socket?.close();
    ws.cleanup();
  });

  it("sends READY with a STATUS, feeds the watchdog at half its period, and says STOPPING on SIGTERM", async () => {
    const config = ws.writeConfig({
      device: { id: "pi-notify" },
      mqtt: { url: "mqtt://127.0.0.1:1", min_backoff_s: 1, max_backoff_s: 2 },
      queue: { path: ws.queuePath, commit_interval_ms: 200 },
      ingest: { listen: "" },
      health: { listen: "" },
      rtc: { mode: "none" },
      sensor: [{ name: "sim", driver: "simulated", interval_s: 0.2, seed: 5 }],
    });
    const notify = socket as UnixDgramServer;
    const child = spawn("arm64", ["run", "-c", config], {
      env: { NOTIFY_SOCKET: notify.address, WATCHDOG_USEC: "2000000", WATCHDOG_PID: undefined },
    });
    try {
      await child.waitForLog((l) => l.msg === "fieldrelay ready", 90_000);
      const messages: string[] = [];
      const deadline = Date.now() + 20_000;
      // STATUS= is refreshed every 5 s: wait for one refresh and a few watchdog feeds.
      const statusRefreshes = () => messages.filter((m) => m.startsWith("STATUS=")).length;
      while (messages.filter((m) => m === "WATCHDOG=1").length < 3 || statusRefreshes() < 1) {
        if (Date.now() > deadline) throw new Error(`got only: ${JSON.stringify(messages)}`);
        messages.push(...notify.drain());
        await Bun.sleep(50);
      }
      const ready = messages.findIndex((m) => m.split("\n").includes("READY=1"));
      expect(ready).toBeGreaterThanOrEqual(0);
      expect(messages[ready]).toMatch(/^READY=1\nSTATUS=.+/);
      // Nothing claims liveness before READY: the first WATCHDOG comes after it.
      expect(messages.indexOf("WATCHDOG=1")).toBeGreaterThan(ready);
      expect(messages.findLastIndex((m) => m.startsWith("STATUS="))).toBeGreaterThan(ready);

      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
      const tail = notify.drain();
      expect(tail).toContain("STOPPING=1");
      expect(tail.indexOf("STOPPING=1")).toBe(tail.lastIndexOf("STOPPING=1"));
    } finally {
      child.kill("SIGKILL");
    }
  });
});
