/**
 * pnpm bench:api — sending (and listing) through the public API with every service running
 * as a process of its own (HTTP → gateway → NATS → mailbox → Postgres, then delivery): sends
 * of 3 KB bodies, 8 in flight, to an inbox of this platform and through the SMTP relay,
 * with p50/p99, the rate, how long until the last one was delivered, and the CPU per send
 * of each process. In the same run, the baselines: an MTA taking the same number of 3 KB
 * messages over SMTP on as many connections (Postfix when it is installed and this runs as
 * root, else the bare relay below), bare Postgres doing a send's insert, and listing.
 * The relay is a bare smtp-server in its own process that fsyncs each message before its 250.
 * Env: BENCH_SENDS (2000 per kind), BENCH_CONCURRENCY (8), BENCH_SIZE (3072 body bytes),
 * BENCH_MESSAGES (100,000 stored for listing; 0 skips listing), BENCH_REQUESTS (400 list
 * requests), BENCH_MAILBOX_REPLICAS (1), BENCH_PROFILE (a folder for CPU profiles of the
 * services). Prints figures; asserts nothing.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createInterface, type Interface } from "node:readline";
import pg from "pg";
import { waitFor } from "@mam/runtime/wait.ts";
import { apiClient } from "@mam/testing/http.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { freePort, runService, untilReady, type RunningProcess } from "@mam/testing/processes.ts";
import { cpuSeconds, preparedSetting, statementsOf } from "./bench-cpu.ts";
import { startPostfix, type PrivatePostfix } from "./bench-postfix.ts";

const SENDS = Number(process.env.BENCH_SENDS ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const SIZE = Number(process.env.BENCH_SIZE ?? 3072);
const STORED = Number(process.env.BENCH_MESSAGES ?? 100_000);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 400);
const REPLICAS = Number(process.env.BENCH_MAILBOX_REPLICAS ?? 1);
const WARMUP = 200;

interface Figures {
  p50: number;
  p99: number;
  perSecond: number;
}

async function measure(n: number, concurrency: number, op: (i: number) => Promise<void>): Promise<Figures> {
  const times: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < n; i = next++) {
        const t = performance.now();
        await op(i);
        times.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return { ...percentiles(times), perSecond: n / elapsed };
}

function percentiles(times: number[]) {
  const s = Float64Array.from(times).sort();
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99) };
}

const row = (name: string, f: Figures, base?: Figures) =>
  `  ${name.padEnd(46)} p50 ${f.p50.toFixed(1).padStart(7)} ms   p99 ${f.p99.toFixed(1).padStart(7)} ms   ${f.perSecond.toFixed(0).padStart(6)} /s` +
  (base ? `   (${(f.perSecond / base.perSecond).toFixed(2)}x of ${base === mtaFigures ? "the MTA" : "baseline"})` : "");

/** `count` messages of SIZE bytes over CONCURRENCY connections to an SMTP port (scripts/smtp-load.ts in its own process). */
async function smtpLoad(port: number, count: number): Promise<Figures> {
  const job = { port, to: "anyone@relay.example", from: "bench@bench.example", count, conns: CONCURRENCY, size: SIZE, offset: 0 };
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/smtp-load.ts", JSON.stringify(job)], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout! });
  const exited = new Promise<never>((_, rej) => child.once("close", (code) => rej(new Error(`SMTP load process exited with ${code}`))));
  await Promise.race([new Promise<void>((res) => lines.once("line", (l) => l === "ready" && res())), exited]);
  child.stdin!.write("go\n");
  const r = await Promise.race([
    new Promise<{ to250: number[]; started: number; finished: number }>((res) => lines.on("line", (l) => l.startsWith("{") && res(JSON.parse(l)))),
    exited,
  ]);
  return { ...percentiles(r.to250), perSecond: count / ((r.finished - r.started) / 1000) };
}

/** The relay process (scripts/bench-sink.ts): its port, and how many messages it has taken. */
async function startSink(): Promise<{ child: ChildProcess; port: number; count: () => Promise<number> }> {
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/bench-sink.ts"], { stdio: ["pipe", "pipe", "inherit"] });
  const lines: Interface = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((res) => lines.once("line", (l) => res(Number(l.split(" ")[1]))));
  const count = () =>
    new Promise<number>((res) => {
      lines.once("line", (l) => res(Number(l.split(" ")[1])));
      child.stdin!.write("count\n");
    });
  return { child, port, count };
}

let mtaFigures: Figures | undefined;
const iso = isolate();
const operatorKey = `sa_${randomBytes(32).toString("base64url")}`;
const children: RunningProcess[] = [];
const client = new pg.Client({ connectionString: iso.urls.DATABASE_URL });
const sink = await startSink();
let postfix: PrivatePostfix | undefined;
try {
  postfix = startPostfix(await freePort());
  const gatewayPort = await freePort();
  // DB_PREPARED_STATEMENTS from the bench's environment goes to the services (0 compares without).
  const base = { ...iso.env, MAIL_DOMAIN: "bench.test", LOG_LEVEL: "warn", ...preparedSetting() };
  const plan = { id: "bench", name: "Bench", stripePriceId: null, limits: { inboxes: null, emailsPerMonth: 100_000_000, domains: null } };
  const services: [string, Record<string, string>][] = [
    [
      "gateway",
      {
        PORT: String(gatewayPort),
        SCOPE_PRIVATE_KEY: Buffer.from(iso.scopeKeys.privateKeyPem).toString("base64"),
        RATE_LIMIT_MAX: "100000000",
        TENANT_RATE_LIMIT_MAX: "100000000",
      },
    ],
    ["identity", { SUPER_ADMIN_KEY: operatorKey }],
    // Every send counts against a plan limit (set high): the check is part of what is measured.
    ["billing", { BILLING_PLANS: JSON.stringify([plan]), BILLING_DEFAULT_PLAN: "bench" }],
    ...Array.from({ length: REPLICAS }, (_, i): [string, Record<string, string>] => [
      REPLICAS > 1 ? `mailbox-${i + 1}` : "mailbox",
      { SMTP_RELAY_URL: `smtp://127.0.0.1:${sink.port}?tls=none` },
    ]),
    [
      "smtp-ingress",
      { SMTP_PORT: String(await freePort()), SMTP_HOST: "127.0.0.1", SMTP_TLS_FILE: `/tmp/${iso.tag}-bench-tls.json`, SMTP_MAX_CLIENTS_PER_IP: "20" },
    ],
    ["realtime", { WS_PORT: String(await freePort()), WS_HOST: "127.0.0.1", WEBHOOK_ALLOW_PRIVATE: "true" }],
  ];
  const healthPorts = new Map<string, number>();
  for (const [name, env] of services) {
    const dir = name.replace(/-\d+$/, "");
    const health = name === "gateway" ? gatewayPort : await freePort();
    const p = runService(
      `services/${dir}/src/main.ts`,
      { ...base, HEALTH_PORT: String(health), DB_SCHEMA: iso.schema(dir), ...env },
      // BENCH_PROFILE=<dir>: each service writes a V8 CPU profile there when it stops.
      process.env.BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [],
    );
    children.push(p);
    healthPorts.set(name, health);
    await untilReady(p, health, name, 60_000);
  }
  await client.connect();
  const api = apiClient(`http://127.0.0.1:${gatewayPort}`);
  const tenant = (await api("POST", "/v1/tenants", { key: operatorKey, body: { name: "Bench" } })).body;
  const tk = tenant.key.key as string;
  const reader = (await api("POST", "/v1/inboxes", { key: tk, body: { username: "reader" } })).body;
  const writer = (await api("POST", "/v1/inboxes", { key: tk, body: { username: "writer" } })).body;
  const schema = iso.schema("mailbox");
  const ws = tenant.workspace.id as string;
  const pids = Object.fromEntries(services.map(([name], i) => [name, children[i]!.child.pid!]));
  const SELF = "bench process (HTTP client)";

  const text = "An agent writes to a person about the order they placed; this line fills the body.\n".repeat(Math.ceil(SIZE / 80)).slice(0, SIZE);
  const sendTo = (to: string, i: number) => async () => {
    const r = await api("POST", `/v1/inboxes/${writer.id}/send`, {
      key: writer.apiKey,
      headers: { "idempotency-key": `${to}-${i}` },
      body: { to, subject: `Bench ${i}`, plainBody: text, verified: true },
    });
    if (r.status !== 200) throw new Error(`send failed: ${r.status} ${JSON.stringify(r.body)}`);
  };
  const filed = async () =>
    Number(
      (await client.query(`select count(*) as n from ${schema}.messages where workspace_id = $1 and inbox_id = $2 and direction = 'inbound'`, [ws, reader.id]))
        .rows[0].n,
    );
  /** Sends SENDS messages, then waits until all of them are delivered; CPU counted over both. */
  const sendPhase = async (name: string, to: string, offset: number, delivered: () => Promise<number>, before: number) => {
    const cpuBefore = cpuSeconds(pids, SELF);
    const statementsBefore = await statementsOf(healthPorts);
    const started = performance.now();
    const f = await measure(SENDS, CONCURRENCY, (i) => sendTo(to, offset + i)());
    await waitFor(async () => (await delivered()) >= before + SENDS, { timeoutMs: 300_000, intervalMs: 100, what: `${name}: every send delivered` }).catch(
      (err: Error) => process.stdout.write(`(${err.message})\n`),
    );
    const deliveredIn = (performance.now() - started) / 1000;
    const cpuAfter = cpuSeconds(pids, SELF);
    const cpu = [...cpuAfter].map(([who, s]) => [who, ((s - (cpuBefore.get(who) ?? 0)) * 1000) / SENDS] as const);
    const statements = [...(await statementsOf(healthPorts))].map(([who, n]) => [who, (n - (statementsBefore.get(who) ?? 0)) / SENDS] as const);
    return { f, deliveredPerSecond: SENDS / deliveredIn, cpu, statements };
  };

  // Warm-up (connections, JIT, caches, the DKIM key): both ways.
  await measure(WARMUP, CONCURRENCY, (i) => sendTo("reader@bench.test", 1_000_000 + i)());
  await measure(WARMUP, CONCURRENCY, (i) => sendTo("someone@relay.example", 1_000_000 + i)());
  await waitFor(async () => (await filed()) >= WARMUP && (await sink.count()) >= WARMUP, {
    timeoutMs: 120_000,
    intervalMs: 100,
    what: "the warm-up delivered",
  });

  const local = await sendPhase("local", "reader@bench.test", 0, filed, await filed());
  const relayed = await sendPhase("relay", "someone@relay.example", 0, sink.count, await sink.count());

  // The MTAs over SMTP, the same count of messages of the same size, as many in flight.
  const bare = await smtpLoad(sink.port, SENDS);
  const viaPostfix = postfix ? await smtpLoad(postfix.port, SENDS) : undefined;
  mtaFigures = viaPostfix ?? bare;

  process.stdout.write(
    `\nsends: ${SENDS} each way, ${CONCURRENCY} in flight, ${SIZE}-byte bodies, ${REPLICAS} mailbox ${REPLICAS > 1 ? "replicas" : "replica"}, all services as processes\n`,
  );
  if (viaPostfix) process.stdout.write(`${row("Postfix over SMTP (accept, fsync, discard)", viaPostfix)}\n`);
  else process.stdout.write("  Postfix: not available here (needs /usr/sbin/postfix and root)\n");
  process.stdout.write(`${row("bare smtp-server over SMTP (fsync before 250)", bare)}\n`);
  for (const [name, r] of [
    ["POST /send, local inbox", local],
    ["POST /send, through the relay", relayed],
  ] as const) {
    process.stdout.write(`${row(name, r.f, mtaFigures)}\n`);
    process.stdout.write(
      `    every one delivered at ${r.deliveredPerSecond.toFixed(0)}/s; CPU ms per send: ${r.cpu.map(([w, ms]) => `${w} ${ms.toFixed(2)}`).join(", ")}\n`,
    );
    const total = r.statements.reduce((n, [, x]) => n + x, 0);
    process.stdout.write(
      `    Postgres statements per send: ${total.toFixed(1)} (${r.statements
        .filter(([, x]) => x > 0)
        .map(([w, x]) => `${w} ${x.toFixed(1)}`)
        .join(", ")})\n`,
    );
  }

  if (STORED > 0) await listing();

  /** Listing 50 at offsets across an inbox of STORED messages, and bare Postgres doing the same; a send's insert, bare. */
  async function listing() {
    process.stdout.write(`\nseeding ${STORED} messages into one inbox's read model…\n`);
    await client.query(
      `insert into ${schema}.messages (workspace_id, message_id, inbox_id, tenant_id, thread_id, direction, status, from_address, from_name,
         to_addresses, cc_addresses, bcc_addresses, subject, preview, raw_hash, raw_size, message_id_header, "references", attachments, labels,
         is_read, version, created_at, updated_at)
       select $1, gen_random_uuid(), $2, $3, gen_random_uuid(), 'inbound', 'received', 'sender' || g || '@example.com', null,
         '["reader@bench.test"]', '[]', '[]', 'Subject ' || g, 'Preview of message ' || g, 'x', 100, '<' || g || '@example.com>', '[]', '[]', '[]',
         false, 1, now() - (g || ' seconds')::interval, now()
       from generate_series(1, $4) g`,
      [ws, reader.id, tenant.tenant.id, STORED],
    );
    await client.query(`analyze ${schema}.messages`);
    const offsets = Array.from({ length: REQUESTS }, (_, i) => (i * 997) % Math.max(1, STORED - 50));
    const listApi = await measure(REQUESTS, CONCURRENCY, async (i) => {
      const r = await api("GET", `/v1/inboxes/${reader.id}/messages?limit=50&offset=${offsets[i]}`, { key: reader.apiKey });
      if (r.status !== 200) throw new Error(`list failed: ${r.status}`);
    });
    const pool = new pg.Pool({ connectionString: iso.urls.DATABASE_URL, max: CONCURRENCY });
    const listPg = await measure(REQUESTS, CONCURRENCY, async (i) => {
      await Promise.all([
        pool.query(
          `select * from ${schema}.messages where workspace_id = $1 and inbox_id = $2 and deleted_at is null order by created_at desc, message_id desc limit 50 offset $3`,
          [ws, reader.id, offsets[i]],
        ),
        pool.query(`select count(*) from ${schema}.messages where workspace_id = $1 and inbox_id = $2 and deleted_at is null`, [ws, reader.id]),
      ]);
    });
    const sendPg = await measure(SENDS, CONCURRENCY, async (i) => {
      const c = await pool.connect();
      try {
        await c.query("begin");
        await c.query(`insert into ${schema}.blobs (workspace_id, hash, size, data, created_at) values ($1, $2, $3, $4, now()) on conflict do nothing`, [
          ws,
          `bench-${i}`,
          SIZE,
          Buffer.alloc(SIZE, 120),
        ]);
        await c.query(
          `insert into ${schema}.messages (workspace_id, message_id, inbox_id, tenant_id, thread_id, direction, status, from_address, to_addresses, cc_addresses,
             bcc_addresses, subject, preview, raw_hash, raw_size, message_id_header, "references", attachments, labels, is_read, version, created_at, updated_at)
           values ($1, gen_random_uuid(), $2, $3, gen_random_uuid(), 'outbound', 'sent', 'writer@bench.test', '["reader@bench.test"]', '[]', '[]', $4, 'x',
             $5, $6, '<x>', '[]', '[]', '[]', true, 1, now(), now())`,
          [ws, writer.id, tenant.tenant.id, `Bench ${i}`, `bench-${i}`, SIZE],
        );
        await c.query("commit");
      } finally {
        c.release();
      }
    });
    await pool.end();
    process.stdout.write(`\n${STORED} messages stored, ${REQUESTS} list requests, ${CONCURRENCY} in flight\n`);
    process.stdout.write(`${row("list 50 (bare Postgres, baseline)", listPg)}\n${row("list 50 (GET /v1/.../messages)", listApi, listPg)}\n`);
    process.stdout.write(`${row("send (bare Postgres insert)", sendPg)}\n`);
  }
} finally {
  await client.end().catch(() => undefined);
  for (const c of children) c.child.kill("SIGTERM");
  await Promise.all(children.map((c) => c.exited));
  sink.child.stdin!.end();
  postfix?.stop();
  await iso.cleanup();
}
