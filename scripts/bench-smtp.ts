/**
 * pnpm bench:smtp — N messages of SIZE bytes over K SMTP connections into one inbox, with
 * all services running (mailboxes and smtp-ingress as their own processes). Prints
 * messages/s, p50/p99 time-to-250, time-until-visible-through-the-API and the filing rate
 * (messages per second from the first 250 to the last message visible), once per platform
 * set-up: one and two mailbox replicas on the machine's nats-server (R1), and with
 * BENCH_CLUSTER=1 also on a local three-node JetStream cluster with NATS_REPLICAS=3 (R3) and,
 * for a like-for-like R1, on a private single nats-server.
 * In the same run a bare smtp-server that writes and fsyncs each message before its 250,
 * as the baseline. Identity and the gateway run in this process.
 * Env: BENCH_N (10000), BENCH_SIZE (4096), BENCH_K (10 connections), BENCH_PROCS (2 load
 * processes), BENCH_MAILBOXES (mailbox replicas of each R1 run, "1,2"), BENCH_CLUSTER (1: the
 * private R1 and the R3 runs too, one mailbox each), BENCH_PROFILE (a folder for CPU profiles
 * of the services).
 * Prints figures; asserts nothing.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fsyncingSmtpServer } from "./bench-fsync-server.ts";
import { loadConfig as gatewayConfig } from "@mam/gateway/config.ts";
import { GatewayService } from "@mam/gateway/service.ts";
import { loadConfig as identityConfig } from "@mam/identity/config.ts";
import { IdentityService } from "@mam/identity/service.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { TestDnsServer } from "@mam/testing/dns-server.ts";
import { apiClient } from "@mam/testing/http.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { NatsCluster } from "@mam/testing/nats-cluster.ts";
import { PrivateNatsServer } from "@mam/testing/nats-server.ts";
import { freePort, runService, untilReady } from "@mam/testing/processes.ts";
import { cpuSeconds } from "./bench-cpu.ts";

const N = Number(process.env.BENCH_N ?? 10_000);
const SIZE = Number(process.env.BENCH_SIZE ?? 4096);
const K = Number(process.env.BENCH_K ?? 10);
const P = Number(process.env.BENCH_PROCS ?? 2);
const MAILBOXES = (process.env.BENCH_MAILBOXES ?? "1,2").split(",").map(Number);
const CLUSTER = process.env.BENCH_CLUSTER === "1";

/** Run as processes of their own; identity and the gateway run in this one. */
const SERVICES = ["mailbox", "smtp-ingress", "billing", "realtime"] as const;

const pct = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;

/**
 * Sends N messages over K connections from P load processes (scripts/smtp-load.ts), started
 * together once every connection is open; returns per-message send times and time-to-250.
 */
async function blast(port: number, to: string) {
  const procs = Math.min(P, K);
  const children = Array.from({ length: procs }, (_, p) => {
    const conns = Math.floor(K / procs) + (p < K % procs ? 1 : 0);
    const count = Math.floor(N / procs) + (p < N % procs ? 1 : 0);
    const job = { port, to, from: "bench@bench.example", count, conns, size: SIZE, offset: p * 1_000_000 };
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/smtp-load.ts", JSON.stringify(job)], { stdio: ["pipe", "pipe", "inherit"] });
    const lines = createInterface({ input: child.stdout! });
    const ready = new Promise<void>((res, rej) => {
      lines.once("line", (l) => (l === "ready" ? res() : rej(new Error(`load process: ${l}`))));
      child.once("close", (code) => rej(new Error(`load process exited with ${code}`)));
    });
    const result = new Promise<{ started: number; finished: number; sentAt: number[]; to250: number[] }>((res, rej) => {
      lines.on("line", (l) => l.startsWith("{") && res(JSON.parse(l)));
      child.once("close", (code) => rej(new Error(`load process exited with ${code}`)));
    });
    return { child, ready, result };
  });
  await Promise.all(children.map((c) => c.ready));
  for (const c of children) c.child.stdin!.write("go\n");
  const results = await Promise.all(children.map((c) => c.result));
  const started = Math.min(...results.map((r) => r.started));
  const finished = Math.max(...results.map((r) => r.finished));
  return {
    sentAt: results.flatMap((r) => r.sentAt),
    to250: results.flatMap((r) => r.to250),
    perSecond: N / ((finished - started) / 1000),
  };
}

async function bareBaseline(): Promise<{ perSecond: number; to250: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), "bench-smtp-"));
  const { server } = fsyncingSmtpServer(dir, (n) => `${n}.eml`);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.server.address() as { port: number }).port;
  const r = await blast(port, "anyone@bench.test");
  await new Promise<void>((res) => server.close(() => res()));
  rmSync(dir, { recursive: true, force: true });
  return r;
}

interface Setup {
  label: string;
  /** Another NATS than the machine's (the cluster's client URLs). */
  natsUrl?: string;
  replicas: number;
  mailboxes: number;
}

interface Figures {
  perSecond: number;
  to250: number[];
  visible: number[];
  filedPerSecond: number;
  cpuPerMessage: Map<string, number>;
}

/** Starts the platform as `setup` says on schemas and a prefix of its own, runs the load, and stops it all. */
async function runPlatform(setup: Setup, resolver: string): Promise<Figures> {
  const iso = isolate();
  const env = { ...iso.env, ...(setup.natsUrl ? { NATS_URL: setup.natsUrl } : {}), NATS_REPLICAS: String(setup.replicas) };
  const silent = createLogger("bench", "silent");
  const operatorKey = `sa_${randomBytes(32).toString("base64url")}`;
  const identity = new IdentityService(identityConfig({ ...env, DB_SCHEMA: iso.schema("identity"), SUPER_ADMIN_KEY: operatorKey }), { logger: silent });
  const gateway = new GatewayService(
    gatewayConfig({ ...env, SCOPE_PRIVATE_KEY: Buffer.from(iso.scopeKeys.privateKeyPem).toString("base64"), RATE_LIMIT_MAX: "100000000" }),
    { logger: silent },
  );
  const services = [...Array.from({ length: setup.mailboxes }, () => "mailbox"), ...SERVICES.filter((s) => s !== "mailbox")];
  const children: ReturnType<typeof runService>[] = [];
  try {
    await identity.start();
    await gateway.start();
    const smtpPort = await freePort();
    // Every service runs: billing and realtime too, though this load asks nothing of them yet.
    for (const name of services) {
      const health = await freePort();
      const p = runService(
        `services/${name}/src/main.ts`,
        {
          ...env,
          HEALTH_PORT: String(health),
          DB_SCHEMA: iso.schema(name),
          MAIL_DOMAIN: "bench.test",
          LOG_LEVEL: "warn",
          SMTP_PORT: String(smtpPort),
          SMTP_HOST: "127.0.0.1",
          SMTP_TLS_FILE: `/tmp/${iso.tag}-bench-tls.json`,
          SMTP_MAX_CLIENTS_PER_IP: String(K * 2),
          DNS_SERVERS: resolver,
          // Realtime's WebSocket port: any free one, so another run beside this one does not collide.
          WS_PORT: "0",
        },
        // BENCH_PROFILE=<dir>: each service writes a V8 CPU profile there when it stops.
        process.env.BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [],
      );
      children.push(p);
      await untilReady(p, health, name, 60_000);
    }
    const api = apiClient(`http://127.0.0.1:${gateway.port}`);
    const tenant = (await api("POST", "/v1/tenants", { key: operatorKey, body: { name: "Bench" } })).body;
    const inbox = (await api("POST", "/v1/inboxes", { key: tenant.key.key, body: { username: "bench" } })).body;
    await new Promise((r) => setTimeout(r, 500)); // the directory hears of the inbox through an event

    const visibleAt: number[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const r = await api("GET", `/v1/inboxes/${inbox.id}/messages?limit=1`, { key: inbox.apiKey });
        const total = r.body?.pagination?.total ?? 0;
        const now = performance.timeOrigin + performance.now();
        while (visibleAt.length < total) visibleAt.push(now);
        if (visibleAt.length >= N) break;
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    // A second mailbox replica is "mailbox 2".
    const pids = Object.fromEntries(children.map((c, i) => [services.indexOf(services[i]!) === i ? services[i]! : `${services[i]} ${i + 1}`, c.child.pid!]));
    const cpu = () => cpuSeconds(pids, "bench process (identity, gateway, poller)");
    const cpuBefore = cpu();
    const ours = await blast(smtpPort, inbox.email);
    await waitFor(() => visibleAt.length >= N, { timeoutMs: 300_000, intervalMs: 50, what: "all messages visible" });
    polling = false;
    await poller;
    const cpuAfter = cpu();
    // Arrival order approximates send order: the k-th visible message is matched with the k-th sent.
    const order = ours.sentAt.map((t, i) => [t, i] as const).sort((a, b) => a[0] - b[0]);
    const first250 = Math.min(...ours.sentAt.map((t, i) => t + ours.to250[i]!));
    return {
      perSecond: ours.perSecond,
      to250: ours.to250,
      visible: order.map(([t], k) => visibleAt[k]! - t),
      filedPerSecond: N / ((visibleAt[N - 1]! - first250) / 1000),
      cpuPerMessage: new Map([...cpuAfter].map(([name, after]) => [name, ((after - (cpuBefore.get(name) ?? 0)) * 1000) / N])),
    };
  } finally {
    for (const c of children) c.child.kill("SIGTERM");
    await Promise.all(children.map((c) => c.exited));
    await gateway.destroy().catch(() => undefined);
    await identity.destroy().catch(() => undefined);
    await iso.cleanup();
  }
}

const setups: Setup[] = MAILBOXES.map((m) => ({ label: `R1, ${m} mailbox${m > 1 ? "es" : ""} (one nats-server)`, replicas: 1, mailboxes: m }));
// A local resolver that answers at once (NXDOMAIN), as a caching resolver next to an MX would.
const dns = new TestDnsServer();
const cluster = CLUSTER ? new NatsCluster(3) : undefined;
// The machine's server also serves whatever else runs on it: beside R3, an R1 server of this run's own.
const single = CLUSTER ? new PrivateNatsServer() : undefined;
try {
  const resolver = await dns.start();
  if (cluster && single) {
    await Promise.all([cluster.start(), single.start()]);
    setups.push({ label: "R1, 1 mailbox (private nats-server)", natsUrl: single.url, replicas: 1, mailboxes: 1 });
    setups.push({ label: "R3, 1 mailbox (3-node cluster)", natsUrl: cluster.url, replicas: 3, mailboxes: 1 });
  }
  const results: [Setup, Figures][] = [];
  for (const setup of setups) {
    process.stderr.write(`running: ${setup.label}\n`);
    results.push([setup, await runPlatform(setup, resolver)]);
  }
  const bare = await bareBaseline();

  const f = (x: number, w = 8) => x.toFixed(1).padStart(w);
  const r = (x: number) => x.toFixed(0).padStart(6);
  process.stdout.write(`\n${N} messages of ${SIZE} bytes over ${K} connections\n`);
  process.stdout.write(`${"".padEnd(40)}  msg/s   250 p50   250 p99   visible p50   visible p99   filed/s   x bare\n`);
  process.stdout.write(`${"bare smtp-server, fsync before 250".padEnd(40)} ${r(bare.perSecond)}  ${f(pct(bare.to250, 0.5))}  ${f(pct(bare.to250, 0.99))}\n`);
  for (const [setup, x] of results) {
    process.stdout.write(
      `${setup.label.padEnd(40)} ${r(x.perSecond)}  ${f(pct(x.to250, 0.5))}  ${f(pct(x.to250, 0.99))}  ${f(pct(x.visible, 0.5), 12)}  ${f(pct(x.visible, 0.99), 12)}  ${r(x.filedPerSecond)}   ${(x.perSecond / bare.perSecond).toFixed(2).padStart(5)}\n`,
    );
  }
  process.stdout.write("(ms; msg/s from first send to last 250; filed/s from first 250 to last message visible through the API)\n");
  for (const [setup, x] of results) {
    if (!x.cpuPerMessage.size) continue;
    process.stdout.write(`CPU ms per message, ${setup.label}, until all were visible (load processes not counted):\n`);
    for (const [name, ms] of x.cpuPerMessage) process.stdout.write(`    ${name.padEnd(44)} ${ms.toFixed(3)}\n`);
  }
} finally {
  await dns.stop();
  await cluster?.stop();
  await single?.stop();
}
