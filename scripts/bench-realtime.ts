/**
 * pnpm bench:realtime — mail arriving over SMTP at a steady rate into one inbox, with C
 * WebSocket clients connected through the gateway (half subscribed by workspace_ids, half by
 * pod_ids) and one webhook. Prints p50/p99 from each message's SMTP 250 to its WebSocket
 * frame (every client's) and to its webhook request; in the same run, the baseline: the
 * time from the 250 until the domain event (MessageReceived) can be read off the event
 * stream by a bare NATS client, the floor the realtime path builds on. Also counts frames
 * missing or delivered twice, and webhook signatures that failed to verify.
 * All six services run as processes of their own; this one holds the clients only.
 * Env: BENCH_RATE (300 messages/s), BENCH_SECONDS (20), BENCH_CLIENTS (100), BENCH_SIZE
 * (2048 bytes), BENCH_K (10 SMTP connections), BENCH_PROFILE (a folder for CPU profiles of
 * the services). Prints figures; asserts nothing.
 */
import { spawn } from "node:child_process";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage } from "node:http";
import { createInterface } from "node:readline";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import WebSocket from "ws";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { apiClient } from "@mam/testing/http.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { freePort, runService, untilReady, type RunningProcess } from "@mam/testing/processes.ts";
import { cpuSeconds } from "./bench-cpu.ts";

const RATE = Number(process.env.BENCH_RATE ?? 300);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 100);
const SIZE = Number(process.env.BENCH_SIZE ?? 2048);
const K = Number(process.env.BENCH_K ?? 10);
const N = RATE * SECONDS;
const WARMUP = 200;
const WARMUP_OFFSET = 1_000_000;

const now = () => performance.timeOrigin + performance.now();
const pct = (xs: number[], q: number) => {
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};
/**
 * The number in a message's subject `bench <n>`, read off the bytes without decoding or
 * parsing the frame: a hundred clients' frames are read in this one process, and its CPU is
 * the machine's too.
 */
const SUBJECT = Buffer.from('"subject":"bench ');
const numberIn = (data: Buffer) => {
  let i = data.indexOf(SUBJECT);
  if (i < 0) return undefined;
  let n = 0;
  for (i += SUBJECT.length; i < data.length && data[i]! >= 48 && data[i]! <= 57; i++) n = n * 10 + data[i]! - 48;
  return n;
};
const startsWith = (data: Buffer, prefix: string) => data.subarray(0, prefix.length).toString("latin1") === prefix;

/** Sends `count` messages at `rate`/s over K connections (scripts/smtp-load.ts in its own process). */
async function send(port: number, to: string, count: number, rate: number, offset: number) {
  const job = { port, to, from: "bench@bench.example", count, conns: K, size: SIZE, offset, rate };
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/smtp-load.ts", JSON.stringify(job)], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout! });
  const exited = new Promise<never>((_, rej) => child.once("close", (code) => rej(new Error(`load process exited with ${code}`))));
  await Promise.race([new Promise<void>((res) => lines.once("line", (l) => l === "ready" && res())), exited]);
  child.stdin!.write("go\n");
  const result = await Promise.race([
    new Promise<{ sentAt: number[]; to250: number[]; started: number; finished: number }>((res) =>
      lines.on("line", (l) => l.startsWith("{") && res(JSON.parse(l))),
    ),
    exited,
  ]);
  return { at250: result.sentAt.map((t, i) => t + result.to250[i]!), perSecond: count / ((result.finished - result.started) / 1000), to250: result.to250 };
}

const iso = isolate();
const operatorKey = `sa_${randomBytes(32).toString("base64url")}`;
const children: RunningProcess[] = [];
const sockets: WebSocket[] = [];
const nc = await connect({ servers: iso.urls.NATS_URL });
const hooks = createServer();
try {
  const gatewayPort = await freePort();
  const smtpPort = await freePort();
  const base = { ...iso.env, MAIL_DOMAIN: "bench.test", LOG_LEVEL: "warn" };
  const services: Record<string, Record<string, string>> = {
    gateway: {
      PORT: String(gatewayPort),
      SCOPE_PRIVATE_KEY: Buffer.from(iso.scopeKeys.privateKeyPem).toString("base64"),
      RATE_LIMIT_MAX: "100000000",
      TENANT_RATE_LIMIT_MAX: "100000000",
    },
    identity: { SUPER_ADMIN_KEY: operatorKey },
    mailbox: {},
    "smtp-ingress": {
      SMTP_PORT: String(smtpPort),
      SMTP_HOST: "127.0.0.1",
      SMTP_TLS_FILE: `/tmp/${iso.tag}-bench-tls.json`,
      SMTP_MAX_CLIENTS_PER_IP: String(K * 2),
    },
    billing: {},
    realtime: { WS_PORT: String(await freePort()), WS_HOST: "127.0.0.1", WEBHOOK_ALLOW_PRIVATE: "true" },
  };
  for (const [name, env] of Object.entries(services)) {
    const health = name === "gateway" ? gatewayPort : await freePort();
    const p = runService(
      `services/${name}/src/main.ts`,
      { ...base, HEALTH_PORT: String(health), DB_SCHEMA: iso.schema(name), ...env },
      // BENCH_PROFILE=<dir>: each service writes a V8 CPU profile there when it stops.
      process.env.BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [],
    );
    children.push(p);
    await untilReady(p, health, name, 60_000);
  }
  const api = apiClient(`http://127.0.0.1:${gatewayPort}`);
  const tenant = (await api("POST", "/v1/tenants", { key: operatorKey, body: { name: "Bench" } })).body;
  const key: string = tenant.key.key;
  const workspaceId: string = tenant.workspace.id;
  const tenantId: string = tenant.tenant.id;
  const inbox = (await api("POST", "/v1/inboxes", { key, body: { username: "bench" } })).body;

  // The webhook receiver: checks both signatures on the raw body, notes when each message came.
  const hookAt = new Map<number, number>();
  let badSignatures = 0;
  let hookDuplicates = 0;
  let secret = Buffer.alloc(0);
  const verify = (req: IncomingMessage, raw: Buffer) => {
    const sig = (header: string, signed: Buffer) => {
      const want = Buffer.from(`v1=${createHmac("sha256", secret).update(signed).digest("hex")}`);
      const got = Buffer.from(String(req.headers[header] ?? ""));
      return got.length === want.length && timingSafeEqual(got, want);
    };
    const ts = String(req.headers["x-myagentmail-timestamp"] ?? "");
    return sig("x-myagentmail-signature", raw) && sig("x-myagentmail-signature-ts", Buffer.concat([Buffer.from(`${ts}.`), raw]));
  };
  hooks.on("request", (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const at = now();
      const raw = Buffer.concat(chunks);
      if (!verify(req, raw)) badSignatures++;
      const n = numberIn(raw);
      if (n !== undefined) {
        if (hookAt.has(n)) hookDuplicates++;
        else hookAt.set(n, at);
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hooks.listen(0, "127.0.0.1", () => r()));
  const hookPort = (hooks.address() as { port: number }).port;
  const hook = await api("POST", "/v1/webhooks", { key, body: { url: `http://127.0.0.1:${hookPort}/hook`, events: ["message.received"] } });
  if (hook.status !== 201) throw new Error(`webhook: ${hook.status} ${JSON.stringify(hook.body)}`);
  secret = Buffer.from(hook.body.secret);

  // The baseline: a bare NATS client reading MessageReceived off the event stream.
  const tapAt = new Map<number, number>();
  const js = jetstream(nc);
  const tap = await js.consumers.get(eventsStreamName(iso.prefix), {
    filter_subjects: `${iso.prefix}evt.mailbox.${tenantId}.${workspaceId}.MessageReceived`,
    deliver_policy: DeliverPolicy.New,
  });
  void (async () => {
    for await (const m of await tap.consume()) {
      const n = numberIn(Buffer.from(m.data));
      if (n !== undefined && !tapAt.has(n)) tapAt.set(n, now());
    }
  })();

  // The WebSocket clients, through the gateway.
  const frameAt: Map<number, number>[] = [];
  let wsDuplicates = 0;
  for (let c = 0; c < CLIENTS; c++) {
    const seen = new Map<number, number>();
    frameAt.push(seen);
    const ws = new WebSocket(`ws://127.0.0.1:${gatewayPort}/v1/ws`, { headers: { "X-API-Key": key }, skipUTF8Validation: true, perMessageDeflate: false });
    sockets.push(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.on("message", (data: Buffer) => {
        if (startsWith(data, '{"type":"connected"'))
          ws.send(JSON.stringify({ type: "subscribe", ...(c % 2 ? { pod_ids: [workspaceId] } : { workspace_ids: [workspaceId] }) }));
        else if (startsWith(data, '{"type":"subscribed"')) resolve();
        else if (startsWith(data, '{"type":"event"')) {
          const n = numberIn(data);
          if (n === undefined) return;
          if (seen.has(n)) wsDuplicates++;
          else seen.set(n, now());
        }
      });
    });
  }

  // Warm up (connections, JIT, caches), then the measured run.
  await send(smtpPort, inbox.email, WARMUP, 100, WARMUP_OFFSET);
  await waitFor(() => hookAt.size >= WARMUP && frameAt.every((f) => f.size >= WARMUP), { timeoutMs: 60_000, intervalMs: 50, what: "the warm-up's events" });
  const pids = Object.fromEntries(Object.keys(services).map((name, i) => [name, children[i]!.child.pid!]));
  const SELF = "bench process (clients, receiver)";
  const cpuBefore = cpuSeconds(pids, SELF);
  const run = await send(smtpPort, inbox.email, N, RATE, 0);
  const arrived = () => hookAt.size >= N + WARMUP && tapAt.size >= N && frameAt.every((f) => f.size >= N + WARMUP);
  await waitFor(arrived, { timeoutMs: 60_000, intervalMs: 50, what: "every event" }).catch((err: Error) => process.stdout.write(`(${err.message})\n`));
  const cpuAfter = cpuSeconds(pids, SELF);

  const lat = (at: Map<number, number>) => {
    const out: number[] = [];
    for (let n = 0; n < N; n++) {
      const t = at.get(n);
      if (t !== undefined) out.push(t - run.at250[n]!);
    }
    return out;
  };
  const tapLat = lat(tapAt);
  const wsLat = frameAt.flatMap(lat);
  const hookLat = lat(hookAt);
  const missingFrames = CLIENTS * N - wsLat.length;
  const f = (x: number) => x.toFixed(1).padStart(7);
  const line = (what: string, xs: number[]) =>
    process.stdout.write(`  ${what.padEnd(46)} p50 ${f(pct(xs, 0.5))} ms  p99 ${f(pct(xs, 0.99))} ms  max ${f(pct(xs, 1))} ms  (${xs.length} samples)\n`);
  process.stdout.write(
    `\n${N} messages of ${SIZE} bytes at ${RATE}/s (sent at ${run.perSecond.toFixed(0)}/s over ${K} connections), ${CLIENTS} WebSocket clients, 1 webhook\n`,
  );
  line("SMTP time to 250", run.to250);
  line("baseline: 250 → event readable on the stream", tapLat);
  line("250 → WebSocket frame (every client)", wsLat);
  line("250 → webhook request", hookLat);
  process.stdout.write(
    `  WebSocket: ${missingFrames} frames missing, ${wsDuplicates} duplicates; webhook: ${N - hookLat.length} missing, ${hookDuplicates} duplicates, ${badSignatures} bad signatures\n`,
  );
  if (cpuAfter.size) {
    process.stdout.write(`  CPU ms per message until the last event arrived (the SMTP load process not counted):\n`);
    for (const [name, after] of cpuAfter) process.stdout.write(`    ${name.padEnd(40)} ${(((after - (cpuBefore.get(name) ?? 0)) * 1000) / N).toFixed(3)}\n`);
  }
  process.stdout.write(
    `  realtime's own share at p99: WebSocket +${(pct(wsLat, 0.99) - pct(tapLat, 0.99)).toFixed(1)} ms, webhook +${(pct(hookLat, 0.99) - pct(tapLat, 0.99)).toFixed(1)} ms over the baseline\n`,
  );
} finally {
  for (const ws of sockets) ws.terminate();
  hooks.close();
  await nc.close();
  for (const c of children) c.child.kill("SIGTERM");
  await Promise.all(children.map((c) => c.exited));
  await iso.cleanup();
}
