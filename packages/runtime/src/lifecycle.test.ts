import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { waitFor } from "./wait.ts";

/** A service run by runMain in a process of its own; it says when it starts, has started, and is destroyed. */
const main = (startMs: number) => `
  const { runMain } = await import("./packages/runtime/src/lifecycle.ts");
  const { createLogger } = await import("./packages/runtime/src/logger.ts");
  await runMain("probe", async () => ({
    logger: createLogger("probe"),
    shutdownTimeoutMs: 10_000,
    service: {
      async start() {
        console.log("starting");
        await new Promise((r) => setTimeout(r, ${startMs}));
        setInterval(() => {}, 1000);
        console.log("started");
      },
      async destroy() { console.log("destroyed"); process.exit(0); },
    },
  }));`;

/** Runs the probe and sends `signal` once it printed `when`; resolves with how it ended and what it printed. */
async function stopped(signal: NodeJS.Signals, when: "starting" | "started", startMs = 0) {
  const p = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", main(startMs)], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  p.stdout.on("data", (d: Buffer) => (out += d.toString()));
  p.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => p.once("exit", (code, sig) => r([code, sig])));
  try {
    await waitFor(() => out.includes(when), { timeoutMs: 20_000, what: `the service ${when} (${out})` });
    p.kill(signal);
    return { ended: await exited, out };
  } finally {
    if (p.exitCode === null) p.kill("SIGKILL");
  }
}

describe("runMain", () => {
  for (const signal of ["SIGHUP", "SIGTERM", "SIGINT"] as const) {
    it(`${signal} stops the service gracefully (${signal === "SIGHUP" ? "its terminal closed" : "asked to stop"})`, async () => {
      const { ended, out } = await stopped(signal, "started");
      expect(ended).toEqual([0, null]);
      expect(out).toContain(`"signal":"${signal}"`);
      expect(out).toContain("destroyed");
    });
  }

  it("a stop asked for while the service starts is carried out once it has started, not by dying mid-start", async () => {
    const { ended, out } = await stopped("SIGTERM", "starting", 500);
    expect(ended).toEqual([0, null]);
    expect(out.indexOf("started")).toBeLessThan(out.indexOf("destroyed"));
    expect(out).toContain(`"signal":"SIGTERM"`);
  });
});
