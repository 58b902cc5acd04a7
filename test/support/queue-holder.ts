/**
 * Child for the single-writer tests: opens the queue at argv[2] for writing, prints "ready", and
 * holds it open until killed.
 */
import { silentLogger } from "../../src/log/index.ts";
import { openQueue } from "../../src/queue/index.ts";

const q = await openQueue({ path: process.argv[2] as string, log: silentLogger(), commitIntervalMs: 0 });
process.stdout.write("ready\n");
process.on("SIGTERM", () => void q.close().then(() => process.exit(0)));
setInterval(() => {}, 1 << 30);
