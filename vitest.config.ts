import { defineConfig } from "vitest/config";

// CI asks for a JSON report too, to print how many tests really ran.
const jsonOut = process.env.TEST_JSON_REPORT;

export default defineConfig({
  test: {
    reporters: jsonOut ? ["default", ["json", { outputFile: jsonOut }]] : ["default"],
    include: ["packages/*/src/**/*.test.ts", "services/*/src/**/*.test.ts", "services/*/test/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: ["packages/testing/src/global-setup.ts"],
    // Two cores: two files at a time. Each file has its own schema, prefix and stream.
    pool: "forks",
    // Files run one after another in each of the two workers, which keep their loaded modules:
    // loading the services' code anew for each of ~150 files took 330 s of the suite's CPU
    // (import 327 s against 23 s). Each file still has its own schema, prefix and stack, stops
    // what it started, and reads process-wide counters (metrics) as differences.
    isolate: false,
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
