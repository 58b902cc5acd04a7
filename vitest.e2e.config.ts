import { defineConfig } from "vitest/config";
import { textAssets } from "./test/support/text-assets.ts";

// The e2e suite runs the compiled binaries in dist/ (build first: `npm run build`).
export default defineConfig({
  plugins: [textAssets()],
  test: {
    pool: "threads",
    include: ["test/e2e/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
