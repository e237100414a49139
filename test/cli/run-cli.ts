import { spawn } from "node:child_process";
import type { Stack } from "../support/stack.ts";

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed, for `--json` runs. */
  json: any;
}

/** Runs `mam …` as an operator would, in its own process, against the stack's gateway and NATS. */
export function mam(s: Stack, args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const child = spawn(process.execPath, ["--import", "tsx", "packages/cli/src/main.ts", ...args], {
    env: {
      PATH: process.env.PATH ?? "",
      MAM_URL: `http://127.0.0.1:${s.gateways[0]!.port}`,
      NATS_URL: s.iso.env.NATS_URL!,
      NATS_PREFIX: s.iso.env.NATS_PREFIX!,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) =>
    child.once("close", (code) => {
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json });
    }),
  );
}
