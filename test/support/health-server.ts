/**
 * HealthServers: the real health server (src/health) on a free loopback port, fed a RuntimeStatus
 * from the test and Pi vitals from a prepared /sys tree, with monotonic time and the status page's
 * history timer in the test's hands. Construct it at the top of a test file: afterAll stops every
 * server it started and removes the tree.
 */
import { afterAll } from "vitest";
import {
  createVitalsReader,
  type HealthServer,
  startHealthServer,
  thresholdsFromConfig,
} from "../../src/health/index.ts";
import { silentLogger } from "../../src/log/index.ts";
import type { RuntimeStatus } from "../../src/runtime/status.ts";
import { FakeRoot, NOW_MONO_MS } from "./runtime-status.ts";

export const TEST_THRESHOLDS = thresholdsFromConfig({
  queue: { max_rows: 1000, max_bytes: 1_000_000, min_free_disk_mb: 1, commit_interval_ms: 1000 },
});

export interface ServeOptions {
  token?: string;
  host?: string;
  version?: string;
  deviceId?: string;
}

export interface ServedHealth {
  server: HealthServer;
  url(path: string): string;
  /** Advance monotonic time (default one 5 s history step) and record a history row. */
  step(ms?: number): void;
}

export class HealthServers {
  readonly root: FakeRoot;
  private readonly servers: HealthServer[] = [];

  constructor(pi: Parameters<FakeRoot["pi"]>[0] = {}) {
    this.root = new FakeRoot().pi(pi);
    afterAll(async () => {
      for (const s of this.servers) await s.stop();
      this.root.cleanup();
    });
  }

  serve(status: () => RuntimeStatus, o: ServeOptions = {}): ServedHealth {
    let now = NOW_MONO_MS;
    let tick: (() => void) | undefined;
    const server = startHealthServer({
      listen: { host: o.host ?? "127.0.0.1", port: 0 },
      token: o.token,
      status,
      vitals: createVitalsReader({ root: this.root.dir, dataDir: this.root.dir }),
      version: o.version ?? "9.9.9-test",
      ...(o.deviceId === undefined ? {} : { deviceId: o.deviceId }),
      log: silentLogger(),
      thresholds: TEST_THRESHOLDS,
      nowMonoMs: () => now,
      page: {
        stepMs: 5000,
        every: (fn) => {
          tick = fn;
          return () => {};
        },
      },
    });
    this.servers.push(server);
    return {
      server,
      url: (path) => `http://127.0.0.1:${server.port}${path}`,
      step(ms = 5000) {
        now += ms;
        tick?.();
      },
    };
  }
}
