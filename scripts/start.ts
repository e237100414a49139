/**
 * Starts the six services against the servers named by the environment (local defaults
 * otherwise), each in its own process, and stops them together on Ctrl-C or SIGTERM.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { LOCAL_DEFAULTS } from "@mam/runtime/config.ts";

// The gateway first: it creates the scope key pair the others wait for (SCOPE_PUBLIC_KEY_FILE).
const SERVICES = ["gateway", "identity", "mailbox", "smtp-ingress", "billing", "realtime"] as const;

const servers = [
  { name: "NATS", url: process.env.NATS_URL || LOCAL_DEFAULTS.NATS_URL, port: 4222, hint: "nats-server -js" },
  { name: "PostgreSQL", url: process.env.DATABASE_URL || LOCAL_DEFAULTS.DATABASE_URL, port: 5432, hint: "pg_ctlcluster 15 main start" },
  { name: "Redis", url: process.env.REDIS_URL || LOCAL_DEFAULTS.REDIS_URL, port: 6379, hint: "redis-server --daemonize yes" },
];

function reachable(url: string, defaultPort: number): Promise<boolean> {
  const u = new URL(url.split(",")[0]!);
  return new Promise((resolve) => {
    const s = connect({ host: u.hostname, port: Number(u.port || defaultPort), timeout: 2_000 });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
    s.once("timeout", () => {
      s.destroy();
      resolve(false);
    });
  });
}

const missing = [];
for (const s of servers) if (!(await reachable(s.url, s.port))) missing.push(s);
if (missing.length) {
  for (const s of missing) {
    process.stderr.write(`cannot reach ${s.name} at ${new URL(s.url.split(",")[0]!).host}; start it with \`${s.hint}\` (or \`docker compose up -d\`)\n`);
  }
  process.exit(1);
}

const children = new Map<string, ChildProcess>();
let stopping = false;

function stopAll(code: number) {
  if (stopping) return;
  stopping = true;
  process.exitCode = code;
  for (const c of children.values()) c.kill("SIGTERM");
}

// Each service keeps its own default health port (8081-8085); one HEALTH_PORT for all would collide.
const childEnv = { ...process.env };
delete childEnv.HEALTH_PORT;

// Only the gateway signs scope tokens: the others refuse to start with its private key.
const verifierEnv = { ...childEnv };
delete verifierEnv.SCOPE_PRIVATE_KEY;
delete verifierEnv.SCOPE_KEY_FILE;

for (const name of SERVICES) {
  const env = name === "gateway" ? childEnv : verifierEnv;
  const child = spawn(process.execPath, ["--import", "tsx", `services/${name}/src/main.ts`], { stdio: "inherit", env });
  children.set(name, child);
  child.on("exit", (code, signal) => {
    children.delete(name);
    if (!stopping) {
      process.stderr.write(`${name} exited (${signal ?? code}); stopping the platform\n`);
      stopAll(1);
    }
  });
}

process.on("SIGINT", () => stopAll(0));
process.on("SIGTERM", () => stopAll(0));

const port = process.env.PORT || "8080";
const readiness = [port, "8081", "8082", "8083", "8084", "8085"].map((p) => `http://127.0.0.1:${p}/readyz`);
for (let i = 0; i < 600 && !stopping; i++) {
  const oks = await Promise.all(
    readiness.map((u) =>
      fetch(u).then(
        (r) => r.ok,
        () => false,
      ),
    ),
  );
  if (oks.every(Boolean)) {
    process.stdout.write(`\n  Platform ready: http://localhost:${port}/v1  (health on :8081-8085)\n\n`);
    break;
  }
  await new Promise((r) => setTimeout(r, 200));
}
