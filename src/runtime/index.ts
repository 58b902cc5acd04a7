/**
 * The runtime wiring: the only module that knows every part. Start order follows the data flow
 * (queue → clock → publisher → sources → ops surfaces); stop runs backwards so nothing captured
 * is dropped: sources stop first, the write-behind buffer is committed, inflight acks are awaited
 * up to shutdown_timeout_s, then the database is closed.
 */
import { dirname } from "node:path";
import { buildInfo } from "../cli/build-info.ts";
import {
  createClock,
  linuxI2cOpener,
  monotonicNs,
  openRtc,
  readBootId,
  rtcTrustPath,
  syncSourceFromConfig,
} from "../clock/index.ts";
import { startCommands } from "../commands/index.ts";
import { type Config, parseListen } from "../config/index.ts";
import {
  createVitalsReader,
  type HealthServer,
  healthBody,
  startHealthServer,
  thresholdsFromConfig,
} from "../health/index.ts";
import type { ListenerPool } from "../http/index.ts";
import { type IngestServer, startIngestServer } from "../ingest/index.ts";
import type { Logger } from "../log/index.ts";
import { createPublisher } from "../publish/index.ts";
import { openQueue } from "../queue/index.ts";
import { createNotifier, startWatchdog, statusLine } from "../system/index.ts";
import { startClockMessages } from "./clock-message.ts";
import { Sampler } from "./sampler.ts";
import type { RuntimeStatus } from "./status.ts";

export interface RuntimeOptions {
  config: Config;
  log: Logger;
  env?: Record<string, string | undefined>;
  /** HTTP listeners that outlive this runtime across a config reload (#12); owned by the caller. */
  listeners?: ListenerPool;
}

export interface Runtime {
  status(): RuntimeStatus;
  /** Stop the sources only (the demo drains before it counts). */
  stopSampling(): Promise<void>;
  /** Orderly shutdown; resolves when the database is closed. */
  stop(): Promise<void>;
  readonly ingestPort: number | undefined;
  readonly healthPort: number | undefined;
}

const monoMs = () => Number(monotonicNs() / 1_000_000n);

export async function startRuntime(options: RuntimeOptions): Promise<Runtime> {
  const { config, log, env = process.env } = options;
  const startedMonoMs = monoMs();
  const root = config.system.root;
  const bootId = readBootId(root);
  const component = (name: string) => log.child({ component: name });

  const queue = await openQueue({
    path: config.queue.path,
    log: component("queue"),
    durability: config.queue.durability,
    commitIntervalMs: config.queue.commit_interval_ms,
    ingestCommitMs: config.queue.ingest_commit_ms,
    commitMaxRows: config.queue.commit_max_rows,
    maxRows: config.queue.max_rows,
    maxBytes: config.queue.max_bytes,
    minFreeDiskMb: config.queue.min_free_disk_mb,
    protectedPriority: config.queue.protected_priority,
    bootId,
    monoMs,
  });

  const openBus = linuxI2cOpener(root);
  const rtcChoice = await openRtc({
    mode: config.rtc.mode,
    root,
    busNumber: config.rtc.bus,
    address: config.rtc.address,
    openBus,
  });
  component("clock").info({ rtc: rtcChoice.path, reason: rtcChoice.reason }, "rtc path chosen");
  const clock = createClock({
    root,
    syncSource: syncSourceFromConfig(config.clock.sync_source),
    anchors: queue,
    rtc: rtcChoice.rtc,
    log: component("clock"),
    anchorIntervalS: config.clock.anchor_interval_s,
    maxDriftMs: config.rtc.max_drift_ms,
    trustPath: rtcTrustPath(config.queue.path),
  });
  await clock.start();

  const publisher = createPublisher({
    mqtt: config.mqtt,
    deviceId: config.device.id,
    queue,
    stamp: (reading) => clock.publishStamp(reading),
    log: component("publish"),
    monoMs,
  });
  publisher.start();
  const clockMessages = startClockMessages({
    clock,
    prefix: config.mqtt.topic_prefix,
    deviceId: config.device.id,
    connected: () => publisher.stats().connected,
    send: (topic, payload, options) => publisher.send(topic, payload, options),
    log: component("clock"),
    monoMs,
  });

  const sampler = new Sampler({
    sensors: config.sensor,
    ctx: { root, random: Math.random, monoMs },
    capture: (reading) => queue.capture(reading),
    now: () => clock.now(),
    log: component("sampler"),
  });
  sampler.start();

  const status = (): RuntimeStatus => ({
    queue: queue.stats(),
    publisher: publisher.stats(),
    sensors: sampler.stats(),
    clock: clock.status(),
    samplerProgressMonoMs: sampler.progressMonoMs,
    dataDir: dirname(config.queue.path),
    startedMonoMs,
  });

  let ingest: IngestServer | undefined;
  let health: HealthServer | undefined;
  const stops: Array<() => unknown> = [];
  try {
    const ingestListen = parseListen(config.ingest.listen);
    if (ingestListen) {
      ingest = startIngestServer({
        listen: ingestListen,
        maxBodyBytes: config.ingest.max_body_bytes,
        token: config.ingest.token,
        listeners: options.listeners,
        queue,
        now: () => clock.now(),
        defaults: { priority: 5, qos: 1 },
        log: component("ingest"),
      });
    }
    const version = buildInfo().version;
    const thresholds = thresholdsFromConfig(config);
    const vitals = createVitalsReader({ root, dataDir: dirname(config.queue.path) });
    const healthListen = parseListen(config.health.listen);
    if (healthListen) {
      health = startHealthServer({
        listen: healthListen,
        token: config.health.token,
        listeners: options.listeners,
        status,
        vitals,
        version,
        deviceId: config.device.id,
        log: component("health"),
        thresholds,
      });
    }
    if (config.commands.enabled) {
      const commands = await startCommands({
        transport: publisher,
        prefix: config.mqtt.topic_prefix,
        deviceId: config.device.id,
        maxPayloadBytes: config.commands.max_payload_bytes,
        ctx: {
          health: () => healthBody(status(), vitals.read(), monoMs(), thresholds, version),
          sample: (name: string) => sampler.sampleNow(name),
          flush: () => queue.flush(),
        },
        log: component("commands"),
      });
      stops.push(() => commands.stop());
    }
  } catch (error) {
    await sampler.stop();
    await ingest?.stop();
    await health?.stop();
    clockMessages.stop();
    await publisher.stop(0);
    clock.stop();
    await queue.close();
    throw error;
  }

  const notifier = createNotifier(env, { log: component("systemd") });
  notifier.ready(statusLine(status()));
  const statusTimer = setInterval(() => notifier.status(statusLine(status())), 5000);
  const stopWatchdog = startWatchdog({
    notifier,
    status,
    nowMonoMs: monoMs,
    windowMs: Math.max(20_000, 2 * config.queue.commit_interval_ms + 5_000),
    log: component("systemd"),
  });
  log.info(
    {
      component: "runtime",
      device: config.device.id,
      bootId,
      sensors: sampler.names(),
      ingest: ingest?.port,
      health: health?.port,
    },
    "fieldrelay ready",
  );

  let sampling = true;
  const stopSampling = async () => {
    if (!sampling) return;
    sampling = false;
    await sampler.stop();
    await ingest?.stop();
  };
  let stopping: Promise<void> | undefined;
  return {
    status,
    stopSampling,
    ingestPort: ingest?.port,
    healthPort: health?.port,
    stop() {
      stopping ??= (async () => {
        notifier.stopping();
        clearInterval(statusTimer);
        stopWatchdog();
        await stopSampling();
        for (const stop of stops) await stop();
        await queue.flush().catch(() => {}); // a failed commit is logged by the queue; close() retries once more
        clockMessages.stop();
        const result = await publisher.stop(config.shutdown_timeout_s * 1000);
        await health?.stop();
        clock.stop();
        await queue.close();
        notifier.close();
        log.info({ component: "runtime", ...result }, "fieldrelay stopped");
      })();
      return stopping;
    },
  };
}
