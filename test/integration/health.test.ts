import parsePrometheusTextFormat, { type PromFamily } from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import {
  createVitalsReader,
  type HealthBody,
  HealthConfigError,
  startHealthServer,
} from "../../src/health/index.ts";
import { silentLogger } from "../../src/log/index.ts";
import type { RuntimeStatus } from "../../src/runtime/status.ts";
import { HealthServers, TEST_THRESHOLDS } from "../support/health-server.ts";
import { fakeStatus, NOW_MONO_MS } from "../support/runtime-status.ts";

const servers = new HealthServers({ tempMilliC: 52_250, throttled: "0x50005", voltAlarm: "0" });
const serve = (status: () => RuntimeStatus, token?: string, host = "127.0.0.1") =>
  servers.serve(status, { token, host });

describe("GET /health", () => {
  it("answers 200 degraded while the broker is down, with the broker check's reason", async () => {
    const { url } = serve(() =>
      fakeStatus({ publisher: { connected: false, lastError: "connect ECONNREFUSED" } }),
    );
    const res = await fetch(url("/health"));
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({
      status: "degraded",
      version: "9.9.9-test",
      uptime_s: 3600,
      checks: { broker: { status: "degraded", reason: expect.stringContaining("ECONNREFUSED") } },
    });
  });

  it("answers 503 unhealthy when the queue refuses readings", async () => {
    const { url } = serve(() => fakeStatus({ queue: { refusing: true } }));
    const res = await fetch(url("/health"));
    expect(res.status).toBe(503);
    expect(((await res.json()) as HealthBody).checks.queue?.status).toBe("unhealthy");
  });

  it("answers 503 unhealthy when the database is not writable", async () => {
    const { url } = serve(() =>
      fakeStatus({ queue: { lastError: "SQLITE_READONLY", lastCommitMonoMs: NOW_MONO_MS - 120_000 } }),
    );
    const res = await fetch(url("/health"));
    expect(res.status).toBe(503);
    expect(((await res.json()) as HealthBody).checks.database?.reason).toContain("SQLITE_READONLY");
  });

  it("names the address when the port is taken", () => {
    const first = serve(() => fakeStatus());
    const second = () =>
      startHealthServer({
        listen: { host: "127.0.0.1", port: first.server.port },
        status: () => fakeStatus(),
        vitals: createVitalsReader({ root: servers.root.dir, dataDir: servers.root.dir }),
        version: "x",
        log: silentLogger(),
        thresholds: TEST_THRESHOLDS,
      });
    expect(second).toThrow(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.server.port}`));
  });

  it("reports unknown paths as 404", async () => {
    const { url } = serve(() => fakeStatus());
    expect((await fetch(url("/nope"))).status).toBe(404);
  });
});

describe("health token", () => {
  it("refuses to start on 0.0.0.0 without a token", () => {
    expect(() => serve(() => fakeStatus(), undefined, "0.0.0.0")).toThrow(HealthConfigError);
  });

  it("checks the bearer token on loopback when one is set", async () => {
    const token = "a-token-of-at-least-16";
    const { url } = serve(() => fakeStatus(), token);
    expect((await fetch(url("/health"))).status).toBe(401);
    expect(
      (await fetch(url("/metrics"), { headers: { authorization: "Bearer wrong-token-0000000" } })).status,
    ).toBe(401);
    const ok = await fetch(url("/health"), { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
  });
});

describe("GET /metrics", () => {
  const value = (families: PromFamily[], name: string, labels: Record<string, string> = {}) => {
    const family = families.find((f) => f.name === name);
    if (!family) throw new Error(`metric ${name} missing`);
    const sample = family.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    if (!sample) throw new Error(`metric ${name}${JSON.stringify(labels)} missing`);
    return Number(sample.value);
  };

  it("exposes the status snapshot, Pi vitals and process figures as Prometheus text", async () => {
    let status = fakeStatus({
      queue: {
        evictedByPriority: { 1: 7, 3: 2 },
        refusedByPriority: { 2: 5 },
        rows: 42,
        bytes: 9000,
        oldestUnsentAgeS: 17,
      },
      publisher: { connected: false, backoffS: 4.5, reconnects: 3 },
      sensors: [
        { name: "bme", driver: "bme280", reads: 50, failures: 2, lastSuccessAgeS: 1.5, lastError: undefined },
        {
          name: "door",
          driver: "gpio_input",
          reads: 0,
          failures: 0,
          lastSuccessAgeS: undefined,
          lastError: undefined,
        },
      ],
      clock: { source: "rtc", quality: "rtc", synced: false, estimatedErrorMs: 250, rtcOffsetMs: -1500 },
    });
    const { url } = serve(() => status);
    const res = await fetch(url("/metrics"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const m = parsePrometheusTextFormat(await res.text());

    expect(m.find((f) => f.name === "fieldrelay_readings_captured_total")?.type).toBe("COUNTER");
    expect(value(m, "fieldrelay_readings_captured_total")).toBe(120);
    expect(value(m, "fieldrelay_readings_committed_total")).toBe(100);
    expect(value(m, "fieldrelay_readings_delivered_total")).toBe(110);
    expect(value(m, "fieldrelay_readings_resent_total")).toBe(4);
    expect(value(m, "fieldrelay_readings_evicted_total", { priority: "1" })).toBe(7);
    expect(value(m, "fieldrelay_readings_evicted_total", { priority: "3" })).toBe(2);
    expect(value(m, "fieldrelay_readings_refused_total", { priority: "2" })).toBe(5);
    expect(value(m, "fieldrelay_queue_rows")).toBe(42);
    expect(value(m, "fieldrelay_queue_bytes")).toBe(9000);
    expect(value(m, "fieldrelay_queue_oldest_unsent_age_seconds")).toBe(17);
    expect(value(m, "fieldrelay_mqtt_inflight")).toBe(2);
    expect(value(m, "fieldrelay_mqtt_connected")).toBe(0);
    expect(value(m, "fieldrelay_mqtt_reconnects_total")).toBe(3);
    expect(value(m, "fieldrelay_mqtt_backoff_seconds")).toBe(4.5);
    expect(value(m, "fieldrelay_sensor_reads_total", { sensor: "bme" })).toBe(50);
    expect(value(m, "fieldrelay_sensor_failures_total", { sensor: "bme" })).toBe(2);
    expect(value(m, "fieldrelay_sensor_last_success_age_seconds", { sensor: "bme" })).toBe(1.5);
    const ages = m.find((f) => f.name === "fieldrelay_sensor_last_success_age_seconds")?.metrics ?? [];
    expect(ages.map((a) => a.labels?.sensor)).toEqual(["bme"]);
    expect(value(m, "fieldrelay_clock_info", { source: "rtc", quality: "rtc", rtc_path: "kernel" })).toBe(1);
    expect(value(m, "fieldrelay_clock_synced")).toBe(0);
    expect(value(m, "fieldrelay_clock_estimated_error_seconds", { source: "rtc" })).toBe(0.25);
    expect(value(m, "fieldrelay_rtc_offset_seconds", { rtc_path: "kernel" })).toBe(-1.5);
    expect(value(m, "fieldrelay_soc_temperature_celsius", { zone: "thermal_zone0" })).toBe(52.25);
    expect(value(m, "fieldrelay_throttle_flag", { flag: "under_voltage", when: "now" })).toBe(1);
    expect(value(m, "fieldrelay_throttle_flag", { flag: "throttled", when: "since_boot" })).toBe(1);
    expect(value(m, "fieldrelay_throttle_flag", { flag: "frequency_capped", when: "now" })).toBe(0);
    expect(value(m, "fieldrelay_under_voltage_alarm")).toBe(0);
    expect(value(m, "fieldrelay_filesystem_size_bytes", { mount: "data" })).toBeGreaterThan(0);
    expect(value(m, "fieldrelay_process_resident_memory_bytes")).toBeGreaterThan(1024 * 1024);
    expect(value(m, "fieldrelay_event_loop_lag_max_seconds")).toBeGreaterThanOrEqual(0);
    expect(value(m, "fieldrelay_health_status")).toBe(1);
    expect(value(m, "fieldrelay_build_info", { version: "9.9.9-test" })).toBe(1);

    // Values are collected at scrape time: the next scrape sees the new snapshot.
    status = fakeStatus({ queue: { captured: 500 } });
    const again = parsePrometheusTextFormat(await (await fetch(url("/metrics"))).text());
    expect(value(again, "fieldrelay_readings_captured_total")).toBe(500);
    expect(again.find((f) => f.name === "fieldrelay_readings_evicted_total")?.metrics ?? []).toEqual([]);
  });

  it("keeps two servers' registries apart", async () => {
    const a = serve(() => fakeStatus({ queue: { rows: 1 } }));
    const b = serve(() => fakeStatus({ queue: { rows: 2 } }));
    const rows = async (u: string) =>
      value(parsePrometheusTextFormat(await (await fetch(u)).text()), "fieldrelay_queue_rows");
    expect(await rows(a.url("/metrics"))).toBe(1);
    expect(await rows(b.url("/metrics"))).toBe(2);
  });
});
