import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { waitFor } from "@mam/runtime/wait.ts";
import { testEnv } from "./config.ts";

/**
 * Ports handed out come from below the kernel's ephemeral range (Linux: 32768-60999; macOS:
 * from 49152): a port the system picked (listen on 0) is one it also gives to outgoing
 * connections, so between its release and a server process binding it, any client connection
 * of the machine (to Postgres, NATS, a test's HTTP request) could take it as its local port,
 * and the server would fail to start with EADDRINUSE. Each vitest worker draws from its own
 * slice, so two test files running side by side never draw the same port.
 */
const LOW = 20_000;
const HIGH = 32_000;
const handedOut = new Set<number>();

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** A port that was free a moment ago, and that no other freePort of this suite hands out. */
export async function freePort(): Promise<number> {
  const workers = 8;
  const slice = Math.floor((HIGH - LOW) / workers);
  const worker = ((testEnv.VITEST_POOL_ID ?? process.pid) - 1 + workers) % workers;
  const from = LOW + worker * slice;
  for (let tries = 0; tries < 200; tries++) {
    const port = from + Math.floor(Math.random() * slice);
    if (handedOut.has(port) || !(await canBind(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port in ${from}-${from + slice - 1}`);
}

export interface RunningProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs a service's main.ts as the operator would, in its own process. */
export function runService(entry: string, env: Record<string, string>, nodeArgs: string[] = []): RunningProcess {
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", entry], {
    env: { PATH: testEnv.PATH, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Until the process's health endpoint answers ready; a timeout names it and shows what it printed. */
export async function untilReady(p: RunningProcess, healthPort: number, name: string, timeoutMs = 30_000): Promise<void> {
  const ready = () =>
    fetch(`http://127.0.0.1:${healthPort}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
  await waitFor(ready, { timeoutMs, intervalMs: 100, what: `${name} ready` }).catch((err: Error) => {
    throw new Error(`${err.message} (${p.stderr()})`);
  });
}
