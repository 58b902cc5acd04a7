/**
 * DeviceRun: the setup an e2e test of one compiled fieldrelay against one mosquitto repeats — a
 * workspace, the broker, a config with the device's HTTP servers on free loopback ports, the
 * running process — and the afterAll that leaves nothing behind when a test fails half-way
 * (the process killed, the broker closed, the workspace removed). Construct it inside describe().
 */
import { afterAll } from "vitest";
import { type Flavor, type RunningFieldrelay, type RunOptions, spawn, Workspace } from "./fieldrelay.ts";
import { type BrokerOptions, MosquittoBroker } from "./mosquitto.ts";
import { freePort } from "./ports.ts";

export interface DeviceConfigOptions {
  id: string;
  /** Merged into [mqtt] after url (the broker's own unless given). */
  mqtt?: Record<string, unknown>;
  /** queue.commit_interval_ms. */
  commitIntervalMs?: number;
  /** Listen on a free loopback port (default) or not at all. */
  ingest?: boolean;
  health?: boolean;
  /** Further top-level sections (log, sensor, …). */
  extra?: Record<string, unknown>;
}

export interface DeviceConfig {
  path: string;
  /** Loopback ports of the servers asked for. */
  ingestPort: number;
  healthPort: number;
}

export class DeviceRun {
  readonly ws: Workspace;
  private brokerValue: MosquittoBroker | undefined;
  proc: RunningFieldrelay | undefined;

  constructor(
    prefix: string,
    readonly flavor: Flavor = "x64",
  ) {
    this.ws = new Workspace(prefix);
    afterAll(() => this.close());
  }

  get broker(): MosquittoBroker {
    if (!this.brokerValue) throw new Error("DeviceRun: startBroker() first");
    return this.brokerValue;
  }

  async startBroker(options?: BrokerOptions): Promise<MosquittoBroker> {
    this.brokerValue = await MosquittoBroker.start(options);
    return this.brokerValue;
  }

  /** Write the device's config: the broker, the workspace's queue, no RTC. */
  async writeConfig(options: DeviceConfigOptions): Promise<DeviceConfig> {
    const ingestPort = options.ingest === false ? 0 : await freePort();
    const healthPort = options.health === false ? 0 : await freePort();
    const path = this.ws.writeConfig({
      device: { id: options.id },
      mqtt: { url: this.broker.url, ...options.mqtt },
      queue: { path: this.ws.queuePath, commit_interval_ms: options.commitIntervalMs ?? 50 },
      ingest: { listen: ingestPort ? `127.0.0.1:${ingestPort}` : "" },
      health: { listen: healthPort ? `127.0.0.1:${healthPort}` : "" },
      rtc: { mode: "none" },
      ...options.extra,
    });
    return { path, ingestPort, healthPort };
  }

  /** `run -c config`, kept for afterAll. */
  run(config: string, options?: RunOptions): RunningFieldrelay {
    this.proc = spawn(this.flavor, ["run", "-c", config], options);
    return this.proc;
  }

  async close(): Promise<void> {
    if (this.proc && this.proc.proc.exitCode === null) this.proc.kill("SIGKILL");
    await this.brokerValue?.close();
    this.ws.cleanup();
  }
}
