import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { REFUSING_DEGRADED_S } from "../../src/health/evaluate.ts";
import {
  createMetrics,
  decodeThrottled,
  evaluateHealth,
  thresholdsFromConfig,
  type Vitals,
} from "../../src/health/index.ts";
import { fakeStatus, NOW_MONO_MS } from "../support/runtime-status.ts";

const thresholds = thresholdsFromConfig({
  queue: { max_rows: 1000, max_bytes: 1_000_000, min_free_disk_mb: 64, commit_interval_ms: 1000 },
});
const GiB = 1024 ** 3;
const vitals: Vitals = {
  socTemperatureC: 48.3,
  throttle: decodeThrottled(0),
  underVoltageAlarm: false,
  dataDisk: { path: "/var/lib/fieldrelay", totalBytes: 8 * GiB, availableBytes: 4 * GiB, freeBytes: 4 * GiB },
  rootDisk: { path: "/", totalBytes: 4 * GiB, availableBytes: GiB, freeBytes: GiB },
};

describe("health while the broker refuses messages for now (#12 hardening)", () => {
  const broker = (refusingForS: number) =>
    evaluateHealth(
      fakeStatus({
        publisher: {
          refusingForS,
          refusedTransient: 42,
          lastRefusal: "broker refused the PUBLISH: 0x97 Quota exceeded",
        },
        queue: { rows: 300 },
      }),
      vitals,
      NOW_MONO_MS,
      thresholds,
    );

  it("stays healthy through a short episode (a quota blip is not an alarm)", () => {
    expect(broker(REFUSING_DEGRADED_S - 1).status).toBe("healthy");
  });

  it(`is degraded after ${REFUSING_DEGRADED_S} s of refusals without an ack, naming the code and the backlog`, () => {
    const r = broker(REFUSING_DEGRADED_S + 60);
    expect(r.status).toBe("degraded");
    expect(r.checks.broker?.status).toBe("degraded");
    expect(r.checks.broker?.reason).toMatch(
      /refuses messages for now \(.*0x97 Quota exceeded\) since 6 min.*42.*300 wait/,
    );
  });
});

describe("publisher metrics (#12 hardening)", () => {
  it("exports messages and readings apart, bytes, splits, refusals by kind and the refusal episode", async () => {
    const status = fakeStatus({
      publisher: {
        messagesSent: 12,
        readingsSent: 3000,
        published: 3000,
        bytesSent: 45_678,
        batchesSplit: 2,
        refusedTransient: 5,
        refusedPermanent: 3,
        refusingForS: 12.5,
        inflight: 500,
      },
    });
    const text = await createMetrics("0.0.0-test").render({
      status,
      vitals: vitals,
      health: evaluateHealth(status, vitals, NOW_MONO_MS, thresholds),
      lag: { maxSeconds: 0, p99Seconds: 0 },
      nowMonoMs: NOW_MONO_MS,
      rssBytes: 1,
    });
    const families = parsePrometheusTextFormat(text);
    const one = (name: string, labels: Record<string, string> = {}) =>
      Number(
        families
          .find((f) => f.name === name)
          ?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value,
      );
    expect(one("fieldrelay_messages_published_total")).toBe(12);
    expect(one("fieldrelay_readings_published_total")).toBe(3000);
    expect(one("fieldrelay_mqtt_bytes_sent_total")).toBe(45_678);
    expect(one("fieldrelay_mqtt_batches_split_total")).toBe(2);
    expect(one("fieldrelay_mqtt_refusals_total", { kind: "transient" })).toBe(5);
    expect(one("fieldrelay_mqtt_refusals_total", { kind: "permanent" })).toBe(3);
    expect(one("fieldrelay_mqtt_refusing_seconds")).toBe(12.5);
    expect(one("fieldrelay_mqtt_inflight")).toBe(500);
    expect(families.find((f) => f.name === "fieldrelay_mqtt_inflight")?.help).toMatch(/^Readings/);
  });
});
