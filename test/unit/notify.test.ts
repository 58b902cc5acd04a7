import { describe, expect, it } from "vitest";
import {
  createNotifier,
  encodeSockaddrUn,
  NotifySocketError,
  statusLine,
  watchdogIntervalMs,
} from "../../src/system/index.ts";
import { fakeStatus } from "../support/runtime-status.ts";

describe("sockaddr_un encoding", () => {
  it("encodes a path as AF_UNIX, the path bytes and a NUL", () => {
    const a = encodeSockaddrUn("/run/systemd/notify");
    expect(a.byteLength).toBe(2 + 19 + 1);
    expect([a[0], a[1]]).toEqual([1, 0]);
    expect(Buffer.from(a.subarray(2, 21)).toString()).toBe("/run/systemd/notify");
    expect(a[21]).toBe(0);
  });

  it("encodes an abstract address as a leading NUL and the name, without a trailing NUL", () => {
    const a = encodeSockaddrUn("@sd-notify");
    expect(a.byteLength).toBe(2 + 1 + 9);
    expect(a[2]).toBe(0);
    expect(Buffer.from(a.subarray(3)).toString()).toBe("sd-notify");
  });

  it("refuses addresses that are not unix sockets or do not fit sun_path", () => {
    expect(() => encodeSockaddrUn("vsock:2:1234")).toThrow(NotifySocketError);
    expect(() => encodeSockaddrUn(`/${"x".repeat(107)}`)).toThrow(/longer than sun_path/);
    expect(() => encodeSockaddrUn(`/${"x".repeat(106)}`)).not.toThrow();
  });
});

describe("the watchdog interval", () => {
  it("is half of WATCHDOG_USEC, in ms", () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "30000000" })).toBe(15_000);
  });
  it("is undefined without WATCHDOG_USEC or when WATCHDOG_PID names another process", () => {
    expect(watchdogIntervalMs({})).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "0" })).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "1" }, 4242)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "4242" }, 4242)).toBe(15_000);
  });
});

describe("the notifier without NOTIFY_SOCKET", () => {
  it("makes every call a no-op", () => {
    const n = createNotifier({});
    expect(n.enabled).toBe(false);
    expect([n.ready(), n.status("x"), n.watchdog(), n.stopping()]).toEqual([false, false, false, false]);
    n.close();
  });
});

describe("the STATUS= line", () => {
  it("summarises sensors, queue, broker and clock in one line", () => {
    expect(statusLine(fakeStatus())).toBe(
      "1 sensor; queue 10 rows (oldest 3 s); broker up, 2 inflight; clock ntp",
    );
    const bad = fakeStatus({
      publisher: { connected: false, backoffS: 7.6 },
      queue: { rows: 0, refusing: true },
      clock: { synced: false },
      sensors: [
        { name: "a", driver: "x", reads: 0, failures: 3, lastSuccessAgeS: undefined, lastError: "EIO" },
        { name: "b", driver: "x", reads: 5, failures: 0, lastSuccessAgeS: 1, lastError: undefined },
      ],
    });
    expect(statusLine(bad)).toBe(
      "2 sensors (1 failing); queue 0 rows REFUSING; broker down, retry in 8 s; clock unsynced",
    );
  });
});
