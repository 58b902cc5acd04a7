import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log/index.ts";
import type { RuntimeStatus } from "../../src/runtime/status.ts";
import { createNotifier, type Notifier, startWatchdog } from "../../src/system/index.ts";
import { fakeStatus } from "../support/runtime-status.ts";
import { UnixDgramServer } from "../support/unix-dgram.ts";

const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});
const track = <T extends { close(): void }>(x: T) => {
  open.push(x);
  return x;
};

describe.each([
  ["a filesystem path", () => UnixDgramServer.path()],
  ["an abstract address", () => UnixDgramServer.abstract()],
])("sd_notify to %s", (_, bind) => {
  it("sends READY, STATUS, WATCHDOG and STOPPING as systemd expects them", async () => {
    const socket = track(bind());
    const n = track(createNotifier({ NOTIFY_SOCKET: socket.address }));
    expect(n.enabled).toBe(true);
    expect(n.ready("capturing 3 sensors")).toBe(true);
    expect(n.status("queue 12 rows\nbroker up")).toBe(true);
    expect(n.watchdog()).toBe(true);
    expect(n.stopping()).toBe(true);
    expect(await socket.receive(4)).toEqual([
      "READY=1\nSTATUS=capturing 3 sensors",
      "STATUS=queue 12 rows broker up",
      "WATCHDOG=1",
      "STOPPING=1",
    ]);
  });
});

describe("sd_notify failures", () => {
  it("returns false instead of throwing when the socket is gone", () => {
    const socket = UnixDgramServer.path();
    const address = socket.address;
    socket.close();
    const n = track(createNotifier({ NOTIFY_SOCKET: address }));
    expect(n.ready()).toBe(false);
  });
});

describe("the watchdog loop", () => {
  it("feeds WATCHDOG=1 while capture progresses and stops when the sampler stalls", async () => {
    const socket = track(UnixDgramServer.path());
    // WATCHDOG_USEC 20 ms → a feed every 10 ms; the clock is injected.
    const n: Notifier = track(createNotifier({ NOTIFY_SOCKET: socket.address, WATCHDOG_USEC: "20000" }));
    expect(n.watchdogIntervalMs).toBe(10);
    let now = 1_000_000;
    let status: RuntimeStatus = fakeStatus({ samplerProgressMonoMs: now });
    const stop = startWatchdog({
      notifier: n,
      status: () => status,
      nowMonoMs: () => now,
      windowMs: 5_000,
      log: silentLogger(),
    });
    try {
      const fed = await socket.receive(3);
      expect(fed.every((m) => m === "WATCHDOG=1")).toBe(true);

      now += 6_000; // the sampler has not turned for 6 s, over the 5 s window
      socket.drain(); // feeds sent before the stall (sendto is synchronous, so they are all here)
      const [first] = await socket.receive(1);
      expect(first).toMatch(/^STATUS=stalled: sampler loop made no progress for 6000 ms/);
      await Bun.sleep(60); // six intervals: no WATCHDOG=1, no repeated STATUS
      expect(socket.drain()).toEqual([]);

      status = fakeStatus({ samplerProgressMonoMs: now });
      expect(await socket.receive(1)).toEqual(["WATCHDOG=1"]);
    } finally {
      stop();
    }
  });
});
