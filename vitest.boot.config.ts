import { defineConfig } from "vitest/config";

// `npm run test:boot`: builds (or takes from /var/cache/fieldrelay-boot) a Debian arm64 base and a
// kernel, bakes an image and boots it under qemu-system-aarch64. Needs root and the compiled
// dist/fieldrelay-linux-arm64 (`npm run build`). Minutes, not seconds: one file, no parallelism.
export default defineConfig({
  test: {
    pool: "threads",
    include: ["test/boot/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 20 * 60_000,
    fileParallelism: false,
  },
});
