#!/usr/bin/env bun
import { main } from "./cli/index.ts";
import { flushAllSync } from "./log/sink.ts"; // not log/index.ts: that loads pino, which the lazy commands avoid

// No top-level await: the compiled binary is built with --bytecode, which needs a CommonJS-shaped
// entry (see build/build.ts).
void main(process.argv.slice(2)).then((code) => {
  flushAllSync(); // log lines still queued (a fatal one last) are written whole before exit
  process.exit(code);
});
