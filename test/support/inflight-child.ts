/**
 * Child for the inflight-runs crash tests (test/integration/queue-inflight.test.ts). Opens the
 * queue at argv[2] (already holding a backlog), takes argv[3] readings with next() and marks them
 * inflight the way the batching publisher does (one markInflight per next()), commits, then acks
 * every seq listed in argv[4] (comma separated; "-" for none). With argv[5] = "commit" the acks are
 * committed (their rows deleted) before it prints "ready"; with "hold" they are not (they wait for
 * the commit interval, an hour here): the parent's kill -9 lands between the ack and its delete.
 * Prints "taken <seq,seq,…>" first, then "ready", then waits to be killed.
 */
import { silentLogger } from "../../src/log/index.ts";
import { openQueue } from "../../src/queue/index.ts";

const [path, take, acks, mode] = process.argv.slice(2) as [string, string, string, string];
const q = await openQueue({ path, log: silentLogger(), commitIntervalMs: 3_600_000, durability: "full" });
const taken = q.next(Number(take), new Set()).map((r) => r.seq);
q.markInflight(taken);
await q.flush();
process.stdout.write(`taken ${taken.join(",")}\n`);
if (acks !== "-") q.ack(acks.split(",").map(Number));
if (mode === "commit") await q.flush();
process.stdout.write("ready\n");
setInterval(() => {}, 1000);
