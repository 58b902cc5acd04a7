/**
 * Child for the batched kill -9 test: opens the queue at argv[2] and drains it to the broker at
 * argv[3] with batching on, slowly (max_rate 4 messages/s, window 2), so the parent can freeze the
 * broker and SIGKILL this process while batches are inflight. Prints "connected" once online.
 */
import { configSchema } from "../../src/config/index.ts";
import { silentLogger } from "../../src/log/index.ts";
import { createPublisher } from "../../src/publish/index.ts";
import { openQueue } from "../../src/queue/index.ts";

const [path, url] = process.argv.slice(2) as [string, string];
const queue = await openQueue({ path, log: silentLogger(), commitIntervalMs: 20 });
const mqtt = configSchema.parse({
  device: { id: "pi-7" },
  mqtt: { url, max_inflight: 2, max_rate: 4, batch: { enabled: true, max_readings: 50, max_delay_ms: 100 } },
}).mqtt;
const publisher = createPublisher({
  mqtt,
  deviceId: "pi-7",
  queue,
  stamp: (r) => ({ wallMs: r.wallMs, tq: r.tq, errMs: 0 }),
});
publisher.start();
const timer = setInterval(() => {
  if (publisher.stats().connected) {
    process.stdout.write("connected\n");
    clearInterval(timer);
  }
}, 10);
setInterval(() => {}, 1000);
