/**
 * Child for the kill -9 test: opens the queue at argv[2], captures a reading every 2 ms with
 * commit_interval_ms = 50, and prints "committed <seq>" once whenCaptured() resolves for it.
 * The parent SIGKILLs it mid-stream.
 */
import { silentLogger } from "../../src/log/index.ts";
import { openQueue } from "../../src/queue/index.ts";

const path = process.argv[2] as string;
const q = await openQueue({ path, log: silentLogger(), commitIntervalMs: 50, durability: "full" });
let i = 0;
process.stdout.write("ready\n");
setInterval(() => {
  for (let k = 0; k < 5; k++) {
    const res = q.capture({
      bootId: q.bootId,
      monoNs: process.hrtime.bigint(),
      wallMs: Date.now(),
      tq: "unsynced",
      stream: "crash",
      priority: 5,
      qos: 1,
      values: { n: i++ },
    });
    if (res.ok) void q.whenCaptured([res.seq]).then(() => process.stdout.write(`committed ${res.seq}\n`));
  }
}, 2);
