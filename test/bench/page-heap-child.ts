/**
 * Child of page-heap.ts: `fieldrelay run -c <config>` from source, in this Bun process, printing
 * `bun:jsc` heap statistics to stderr every 15 s and, on SIGUSR2, before and after a full GC.
 */
import { heapStats } from "bun:jsc";

const config = process.argv[2]!;
process.argv = [process.argv[0]!, "fieldrelay", "run", "-c", config];
const stats = (tag: string) => {
  const h = heapStats();
  process.stderr.write(
    `${JSON.stringify({ tag, t: Math.round(performance.now() / 1000), heapSize: h.heapSize, heapCapacity: h.heapCapacity, extra: h.extraMemorySize, objects: h.objectCount })}\n`,
  );
};
setInterval(() => stats("tick"), 15_000).unref();
process.on("SIGUSR2", () => {
  stats("before-gc");
  Bun.gc(true);
  stats("after-gc");
});
await import("../../src/main.ts");
