import { defineConfig } from "vitest/config";
import { textAssets } from "./test/support/text-assets.ts";

// Runs under Bun (`bun --bun vitest`) so bun:sqlite and bun:ffi resolve; the forks pool crashes under Bun.
export default defineConfig({
  plugins: [textAssets()],
  test: {
    pool: "threads",
    include: ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    server: { deps: { external: [/^bun:/] } },
  },
});
