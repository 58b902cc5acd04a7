import { describe, expect, it } from "vitest";
import {
  assertListenAllowed,
  decodeThrottled,
  evaluateHealth,
  HealthConfigError,
  type HealthThresholds,
  isAuthorized,
  thresholdsFromConfig,
  type Vitals,
} from "../../src/health/index.ts";
import { fakeStatus, NOW_MONO_MS } from "../support/runtime-status.ts";

const thresholds: HealthThresholds = thresholdsFromConfig({
  queue: { max_rows: 1000, max_bytes: 1_000_000, min_free_disk_mb: 64, commit_interval_ms: 1000 },
});

const GiB = 1024 ** 3;
const goodVitals: Vitals = {
  socTemperatureC: 48.3,
  throttle: decodeThrottled(0),
  underVoltageAlarm: false,
  dataDisk: { path: "/var/lib/fieldrelay", totalBytes: 8 * GiB, availableBytes: 4 * GiB, freeBytes: 4 * GiB },
  rootDisk: { path: "/", totalBytes: 4 * GiB, availableBytes: GiB, freeBytes: GiB },
};

describe("evaluateHealth", () => {
  const evaluate = (s = fakeStatus(), v: Vitals = goodVitals) =>
    evaluateHealth(s, v, NOW_MONO_MS, thresholds);

  it("is healthy with every check ok and a reason for each", () => {
    const r = evaluate();
    expect(r.status).toBe("healthy");
    expect(Object.keys(r.checks).sort()).toEqual([
      "broker",
      "clock",
      "database",
      "dead_letters",
      "disk",
      "power",
      "queue",
      "sampler",
      "sensors",
    ]);
    for (const c of Object.values(r.checks)) {
      expect(c.status).toBe("ok");
      expect(c.reason.length).toBeGreaterThan(0);
    }
  });

  it("is degraded, with the reason, while the broker's refusals sit in dead letters", () => {
    const r = evaluate(
      fakeStatus({
        queue: { deadLetters: 4, lastDeadLetterReason: "broker refused the PUBLISH: 0x87 Not authorized" },
      }),
    );
    expect(r.status).toBe("degraded");
    expect(r.checks.dead_letters?.status).toBe("degraded");
    expect(r.checks.dead_letters?.reason).toMatch(/4 reading\(s\).*0x87 Not authorized.*dead-letter list/);
  });

  it("is only degraded when the broker is unreachable, never unhealthy", () => {
    const r = evaluate(
      fakeStatus({
        publisher: { connected: false, backoffS: 8, lastError: "ECONNREFUSED" },
        queue: { rows: 700, oldestUnsentAgeS: 900 },
      }),
    );
    expect(r.status).toBe("degraded");
    expect(r.checks.broker).toEqual({
      status: "degraded",
      reason: expect.stringContaining("broker unreachable: ECONNREFUSED"),
    });
  });

  it("is degraded above 80 % of the row budget or of the byte budget", () => {
    expect(evaluate(fakeStatus({ queue: { rows: 800 } })).status).toBe("healthy");
    expect(evaluate(fakeStatus({ queue: { rows: 801 } })).checks.queue?.status).toBe("degraded");
    const bytes = evaluate(fakeStatus({ queue: { bytes: 850_000 } }));
    expect(bytes.status).toBe("degraded");
    expect(bytes.checks.queue?.reason).toContain("85 % of max_bytes");
  });

  it("is unhealthy when the queue refuses readings", () => {
    const r = evaluate(fakeStatus({ queue: { refusing: true } }));
    expect(r.status).toBe("unhealthy");
    expect(r.checks.queue?.reason).toContain("refuses");
  });

  it("is unhealthy when commits fail and the last good one is too old; degraded while it is recent", () => {
    const recent = evaluate(
      fakeStatus({ queue: { lastError: "SQLITE_FULL", lastCommitMonoMs: NOW_MONO_MS - 2_000 } }),
    );
    expect(recent.status).toBe("degraded");
    expect(recent.checks.database?.status).toBe("degraded");
    const old = evaluate(
      fakeStatus({ queue: { lastError: "SQLITE_READONLY", lastCommitMonoMs: NOW_MONO_MS - 60_000 } }),
    );
    expect(old.status).toBe("unhealthy");
    expect(old.checks.database?.reason).toMatch(
      /database not writable: SQLITE_READONLY \(last good commit 60\.0 s ago\)/,
    );
    const never = evaluate(
      fakeStatus({ queue: { lastError: "SQLITE_CANTOPEN", lastCommitMonoMs: undefined } }),
    );
    expect(never.checks.database?.reason).toContain("no commit yet");
  });

  it("is unhealthy at once on a storage fault, naming the file, device and mount", () => {
    const fault =
      "storage fault on /var/lib/fieldrelay/queue.db (/dev/mmcblk0p3 179:3 ext4 on /var/lib/fieldrelay, mounted read-only now): SQLITE_IOERR_WRITE: disk I/O error";
    const r = evaluate(
      fakeStatus({
        queue: {
          lastError: "SQLITE_IOERR_WRITE",
          lastCommitMonoMs: NOW_MONO_MS - 1_000,
          storageFault: fault,
        },
      }),
    );
    expect(r.status).toBe("unhealthy");
    expect(r.checks.database?.reason).toBe(fault);
  });

  it("is unhealthy when the sampler loop has stalled", () => {
    const r = evaluate(fakeStatus({ samplerProgressMonoMs: NOW_MONO_MS - 31_000 }));
    expect(r.status).toBe("unhealthy");
    expect(r.checks.sampler?.reason).toContain("stalled");
    expect(evaluate(fakeStatus({ samplerProgressMonoMs: NOW_MONO_MS - 29_000 })).status).toBe("healthy");
  });

  it("is degraded when a sensor keeps failing, naming it", () => {
    const failing = {
      name: "bme",
      driver: "bme280",
      reads: 3,
      failures: 40,
      lastSuccessAgeS: 400,
      lastError: "EREMOTEIO",
    };
    const r = evaluate(fakeStatus({ sensors: [failing] }));
    expect(r.status).toBe("degraded");
    expect(r.checks.sensors?.reason).toContain("bme failing: EREMOTEIO");
    const blip = { ...failing, lastSuccessAgeS: 5 };
    expect(evaluate(fakeStatus({ sensors: [blip] })).status).toBe("healthy");
    const never = { ...failing, lastSuccessAgeS: undefined };
    expect(evaluate(fakeStatus({ sensors: [never] })).checks.sensors?.reason).toContain("never read");
  });

  it("is degraded when the clock is unsynced", () => {
    const r = evaluate(fakeStatus({ clock: { synced: false, quality: "unsynced", source: "none" } }));
    expect(r.status).toBe("degraded");
    expect(r.checks.clock?.status).toBe("degraded");
  });

  it("is degraded on an rpi_volt under-voltage alarm even with a clean throttle word", () => {
    const r = evaluate(fakeStatus(), { ...goodVitals, underVoltageAlarm: true });
    expect(r.checks.power).toEqual({
      status: "degraded",
      reason: expect.stringContaining("under-voltage (rpi_volt alarm)"),
    });
  });

  it("is degraded when the data partition is low", () => {
    const low = {
      ...goodVitals,
      dataDisk: { path: "/data", totalBytes: GiB, availableBytes: 100 * 1024 * 1024, freeBytes: 0 },
    };
    const r = evaluate(fakeStatus(), low);
    expect(r.status).toBe("degraded");
    expect(r.checks.disk?.reason).toContain("data partition low: 100 MiB available");
  });

  it("lets unhealthy win over degraded", () => {
    const r = evaluate(fakeStatus({ publisher: { connected: false }, queue: { refusing: true } }));
    expect(r.status).toBe("unhealthy");
  });
});

describe("health authorisation", () => {
  const token = "0123456789abcdef-secret";
  it("needs no token on loopback, and one everywhere else", () => {
    for (const host of ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
      expect(() => assertListenAllowed(host, undefined)).not.toThrow();
    for (const host of ["0.0.0.0", "::", "192.168.1.20"]) {
      expect(() => assertListenAllowed(host, undefined)).toThrow(HealthConfigError);
      expect(() => assertListenAllowed(host, token)).not.toThrow();
    }
  });
  it("accepts exactly the bearer token", () => {
    expect(isAuthorized(`Bearer ${token}`, token)).toBe(true);
    expect(isAuthorized(`bearer ${token}`, token)).toBe(true);
    expect(isAuthorized(`Bearer ${token}x`, token)).toBe(false);
    expect(isAuthorized(`Bearer ${token.slice(1)}`, token)).toBe(false);
    expect(isAuthorized(token, token)).toBe(false);
    expect(isAuthorized(null, token)).toBe(false);
    expect(isAuthorized("Bearer ", token)).toBe(false);
  });
  it("lets everything through when no token is configured", () => {
    expect(isAuthorized(null, undefined)).toBe(true);
  });
});
