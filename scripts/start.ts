/**
 * `pnpm start`: the six services against the servers named by the environment (local
 * defaults otherwise), each in its own process, kept running by a supervisor (a crashed one
 * is restarted; one that never gets ready stops them all) and stopped together on Ctrl-C,
 * SIGTERM or SIGHUP (the terminal closed). Their logs are shown pretty on a
 * terminal and as JSON lines otherwise (--pretty / --json or LOG_FORMAT to choose).
 */
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { LOCAL_DEFAULTS } from "@mam/runtime/config.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { chooseLogFormat, LineFormatter, operatorKeyBox, type LogFormat } from "./log-format.ts";
import { Supervisor, type ChildSpec } from "./supervisor.ts";

// The gateway first: it creates the scope key pair the others wait for (SCOPE_PUBLIC_KEY_FILE).
const SERVICES = ["gateway", "identity", "mailbox", "smtp-ingress", "billing", "realtime"] as const;
type ServiceName = (typeof SERVICES)[number];

/** Where each service answers /readyz unless told otherwise (the gateway on PORT). */
const DEFAULT_HEALTH_PORTS: Record<ServiceName, number> = {
  gateway: 8080,
  identity: 8081,
  mailbox: 8082,
  "smtp-ingress": 8083,
  billing: 8084,
  realtime: 8085,
};

/** The gateway's health port: /metrics, never on the public port. */
const GATEWAY_METRICS_PORT = 8087;

/** Preloaded into each service: it stops when we are gone, however we went. */
const EXIT_WITH_PARENT = fileURLToPath(new URL("./exit-with-parent.ts", import.meta.url));

/** What identity prints, once, when it generates the operator key (services/identity/src/main.ts). */
const OPERATOR_KEY_LINE = /^\s*Operator key generated \(shown once, stored hashed\): (sa_[A-Za-z0-9_-]+)/;

let format: LogFormat;
try {
  format = chooseLogFormat(process.argv.slice(2), process.env, Boolean(process.stdout.isTTY));
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(2);
}

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

/** `IDENTITY__HEALTH_PORT=9001`: HEALTH_PORT=9001 for identity alone (SMTP_INGRESS__ for smtp-ingress). */
const overridePrefix = (name: string) => `${name.toUpperCase().replace(/-/g, "_")}__`;
const prefixes = SERVICES.map(overridePrefix);

function envFor(name: ServiceName): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!prefixes.some((p) => k.startsWith(p))) env[k] = v;
  // Each service keeps its own default health port (8081-8085); one HEALTH_PORT for all would
  // collide. The gateway answers /readyz on PORT and serves /metrics on 8087 (as in compose).
  delete env.HEALTH_PORT;
  if (name === "gateway") env.HEALTH_PORT = String(GATEWAY_METRICS_PORT);
  // The supervisor's choice, not the services' (they always write JSON).
  delete env.LOG_FORMAT;
  // Only the gateway signs scope tokens: the others refuse to start with its private key.
  if (name !== "gateway") {
    delete env.SCOPE_PRIVATE_KEY;
    delete env.SCOPE_KEY_FILE;
  }
  // The operator key is identity's alone: no other service reads it, none should hold it.
  if (name !== "identity") delete env.SUPER_ADMIN_KEY;
  const own = overridePrefix(name);
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith(own) && k.length > own.length) env[k.slice(own.length)] = v;
  return env;
}

const specs: ChildSpec[] = SERVICES.map((name) => {
  const env = envFor(name);
  const port = Number((name === "gateway" ? env.PORT : env.HEALTH_PORT) || DEFAULT_HEALTH_PORTS[name]);
  return {
    name,
    command: process.execPath,
    args: ["--import", "tsx", "--import", EXIT_WITH_PARENT, `services/${name}/src/main.ts`],
    env,
    readyUrl: `http://127.0.0.1:${port}/readyz`,
  };
});
const gatewayPort = new URL(specs[0]!.readyUrl).port;
const healthPorts = specs.slice(1).map((s) => new URL(s.readyUrl).port);

const colour = format === "pretty" && Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
const out = new LineFormatter(format, ["supervisor", ...SERVICES], { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) }, colour);

// The supervisor's own lines take the same way as the services': JSON, or pretty with its name.
// Info at least, whatever LOG_LEVEL the services get: its lines (pids, restarts) are few.
const level = ["trace", "debug"].includes(process.env.LOG_LEVEL ?? "") ? process.env.LOG_LEVEL : "info";
const logger = createLogger("supervisor", level, {
  write: (line: string) => {
    for (const l of line.split("\n")) if (l) out.line("supervisor", "stdout", l);
  },
});

/**
 * A generated operator key is shown in a box as soon as identity prints it (we may not live
 * to see the platform ready), and held to be shown again once it is ready (or as it stops),
 * where it is not lost among the start-up lines.
 */
let keyToRepeat: string | undefined;

function showOperatorKey(key: string): void {
  const box = operatorKeyBox(key).map((l) => `  ${out.paint(l, "\x1b[1;33m")}`);
  out.notice(`\n${box.join("\n")}\n\n`);
}

function repeatOperatorKey(): void {
  if (keyToRepeat) showOperatorKey(keyToRepeat);
  keyToRepeat = undefined;
}

const supervisor = new Supervisor(specs, {
  logger,
  graceMs: Number(process.env.SHUTDOWN_TIMEOUT_MS || 10_000) + 5_000,
  onLine(name, stream, line) {
    const key = name === "identity" && stream === "stdout" ? OPERATOR_KEY_LINE.exec(line)?.[1] : undefined;
    if (key) {
      // Never passed on as a line: it would land in the log with the rest.
      showOperatorKey(key);
      if (!supervisor.ready) keyToRepeat = key;
      return;
    }
    out.line(name, stream, line);
  },
  onReady(first) {
    const url = `http://localhost:${gatewayPort}/v1`;
    if (format === "pretty" && first) {
      process.stdout.write(`\n  ${out.paint(`Platform ready: ${url}`)}  (health on :${healthPorts.join(", :")})\n\n`);
    } else {
      logger.info({ url, healthPorts: healthPorts.map(Number), pids: supervisor.pids() }, first ? "Platform ready" : "Platform ready again");
    }
    repeatOperatorKey();
  },
  onGiveUp() {
    // The supervisor has said why and is stopping every service: we exit 1 once they are gone.
    stopPlatform();
  },
});

let stopped: Promise<void> | undefined;
function stopPlatform(): void {
  stopped ??= supervisor.stop().then((clean) => {
    // A key generated in this run, shown before the platform was ever ready, shown again last.
    repeatOperatorKey();
    logger.info("platform stopped");
    process.exitCode = clean && !supervisor.gaveUp ? 0 : 1;
  });
}

let asked = 0;
function shutdown(signal: NodeJS.Signals): void {
  // A second Ctrl-C or SIGTERM: no more waiting. A hangup never hurries the stop.
  if (signal !== "SIGHUP" && ++asked > 1) {
    logger.warn({ signal }, "stopping now (SIGKILL)");
    supervisor.kill();
    return;
  }
  if (stopped) return;
  logger.info({ signal }, "stopping the platform");
  stopPlatform();
}
process.on("SIGINT", () => shutdown("SIGINT"));
process.on("SIGTERM", () => shutdown("SIGTERM"));
// The terminal closed: a graceful stop as on SIGTERM, not Node's default of dying at once
// (the services would then stop only as they noticed, without the supervisor's wait).
process.on("SIGHUP", () => shutdown("SIGHUP"));
// After a hangup, or with the reader of our pipe gone, writes fail (EIO, EPIPE): nothing more
// can be shown, and an unhandled write error would end us mid-stop. The services still stop.
for (const stream of [process.stdout, process.stderr]) stream.on("error", () => shutdown("SIGHUP"));

supervisor.start();
