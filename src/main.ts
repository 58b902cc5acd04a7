#!/usr/bin/env bun
import { main } from "./cli/index.ts";

const code = await main(process.argv.slice(2));
process.exit(code);
