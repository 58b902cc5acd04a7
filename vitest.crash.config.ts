import { defineConfig } from "vitest/config";

// `npm run test:crash`: boots the crash suite's emulated device (the boot test's cached Debian
// arm64 base and kernel), then replays its dm-log-writes logs on the host. Needs root and the
// compiled dist/ (`npm run build`). FIELDRELAY_CRASH_FULL=1 runs the full size (≥ 10 000 points).
export default defineConfig({
  test: {
    pool: "threads",
    include: ["test/crash/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 90 * 60_000,
    fileParallelism: false,
    server: { deps: { external: [/^bun:/] } },
  },
});
