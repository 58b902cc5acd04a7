#!/usr/bin/env bun
import { main } from "./cli/index.ts";
import { flushAllSync } from "./log/index.ts";

const code = await main(process.argv.slice(2));
flushAllSync(); // log lines still queued (a fatal one last) are written whole before exit
process.exit(code);
