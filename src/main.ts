#!/usr/bin/env bun
import { main } from "./cli/index.ts";

// No top-level await: the compiled binary is built with --bytecode, which needs a CommonJS-shaped
// entry (see build/build.ts).
void main(process.argv.slice(2)).then((code) => process.exit(code));
