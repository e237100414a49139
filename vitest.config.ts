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
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
