import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { waitFor } from "./wait.ts";

/** A service run by runMain in a process of its own; it says when it is started and when destroyed. */
const MAIN = `
  const { runMain } = await import("./packages/runtime/src/lifecycle.ts");
  const { createLogger } = await import("./packages/runtime/src/logger.ts");
  await runMain("probe", async () => ({
    logger: createLogger("probe"),
    shutdownTimeoutMs: 10_000,
    service: {
      async start() { setInterval(() => {}, 1000); console.log("started"); },
      async destroy() { console.log("destroyed"); process.exit(0); },
    },
  }));`;

describe("runMain", () => {
  for (const signal of ["SIGHUP", "SIGTERM", "SIGINT"] as const) {
    it(`${signal} stops the service gracefully (${signal === "SIGHUP" ? "its terminal closed" : "asked to stop"})`, async () => {
      const p = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", MAIN], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      p.stdout.on("data", (d: Buffer) => (out += d.toString()));
      p.stderr.on("data", (d: Buffer) => (out += d.toString()));
      const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => p.once("exit", (code, sig) => r([code, sig])));
      try {
        await waitFor(() => out.includes("started"), { timeoutMs: 20_000, what: `the service started (${out})` });
        p.kill(signal);
        expect(await exited).toEqual([0, null]);
        expect(out).toContain(`"signal":"${signal}"`);
        expect(out).toContain("destroyed");
      } finally {
        if (p.exitCode === null) p.kill("SIGKILL");
      }
    });
  }
});
