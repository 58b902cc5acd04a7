/**
 * The shipped ARM64 binary (under qemu-user) sampling a DS18B20 from a prepared filesystem root
 * (system.root holding the 1-Wire sysfs tree the kernel's w1_therm writes) next to a simulated
 * sensor, and publishing both to mosquitto: the device path from file to broker, minus the kernel.
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterAll, describe, expect, it } from "vitest";
import { writeProbe } from "../models/w1.ts";
import { binaryMissing, spawn, Workspace } from "../support/fieldrelay.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { AARCH64_LIBC, MOSQUITTO, missing, QEMU_AARCH64 } from "../support/tools.ts";

const skip = binaryMissing("arm64") ?? missing(MOSQUITTO, QEMU_AARCH64, AARCH64_LIBC);
const ID = "28-0316a2799a4f";

interface Message {
  seq: number;
  stream: string;
  values: Record<string, number>;
}

describe.skipIf(skip)("compiled ARM64 binary: DS18B20 and simulated sensors to MQTT", () => {
  const ws = new Workspace();
  let broker: MosquittoBroker | undefined;
  afterAll(async () => {
    await broker?.close();
    ws.cleanup();
  });

  it("publishes the probe's temperature, follows its changes, and publishes nothing for a failed CRC", async () => {
    broker = await MosquittoBroker.start();
    const root = join(ws.dir, "root");
    writeProbe(root, ID, 23125);
    // The prepared root is the whole /dev, /sys and /proc the runtime sees: it needs a boot id too.
    mkdirSync(join(root, "proc/sys/kernel/random"), { recursive: true });
    writeFileSync(join(root, "proc/sys/kernel/random/boot_id"), `${randomUUID()}\n`);
    const config = ws.writeConfig({
      device: { id: "pi-w1" },
      mqtt: { url: broker.url, min_backoff_s: 0.2, max_backoff_s: 1 },
      queue: { path: ws.queuePath, commit_interval_ms: 100 },
      ingest: { listen: "" },
      health: { listen: "" },
      rtc: { mode: "none" },
      system: { root },
      sensor: [
        { name: "tank", driver: "ds18b20", interval_s: 0.3, stream: "water" },
        { name: "sim", driver: "simulated", interval_s: 0.3, seed: 9, stream: "env" },
      ],
    });
    const received: Message[] = [];
    const sub = await mqtt.connectAsync(broker.url, { clientId: "e2e-w1" });
    sub.on("message", (topic, payload) => {
      if (!topic.endsWith("/status")) received.push(JSON.parse(payload.toString()) as Message);
    });
    await sub.subscribeAsync("fieldrelay/pi-w1/+", { qos: 1 });
    const water = () => received.filter((m) => m.stream === "water").map((m) => m.values.temperature_c);
    const until = async (what: string, check: () => boolean) => {
      const deadline = Date.now() + 60_000;
      while (!check()) {
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(received)}`);
        await Bun.sleep(100);
      }
    };

    const child = spawn("arm64", ["run", "-c", config]);
    try {
      await child.waitForLog((l) => l.msg === "fieldrelay ready", 90_000);
      await until("two probe readings", () => water().length >= 2);
      expect(new Set(water())).toEqual(new Set([23.125]));
      expect(received.some((m) => m.stream === "env")).toBe(true);

      // The water warms up: the next readings carry the new value.
      writeProbe(root, ID, -5500);
      await until("the new temperature", () => water().includes(-5.5));

      // A scratchpad with a bad CRC: the read fails (logged), no value is invented.
      writeProbe(root, ID, 99000, { corrupt: true });
      await child.waitForLog(
        (l) => l.msg === "sensor read failed" && /CRC check failed/.test(String(l.error)),
        30_000,
      );
      const count = water().length;
      await Bun.sleep(1000);
      expect(water().length).toBe(count);
      expect(water()).not.toContain(99);

      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
      // Each JSON log line names its component once (a repeated key is invalid for many log shippers).
      expect(child.stdout).not.toMatch(/"component":"[a-z]+",.*"component":/);
    } finally {
      child.kill("SIGKILL");
      await sub.endAsync();
    }
  });
});
