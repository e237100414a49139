/**
 * pnpm bench:read — the read side at scale. Provisions BENCH_READ_TENANTS tenants (4) sharing
 * 100 workspaces, and 1,000 inboxes through the API, seeds generated mail in steps up to each size through the
 * platform's own filing path (published to the ingest stream as smtp-ingress publishes it,
 * filed by the mailbox's consumer), and at each size measures through HTTP, with 4 and 16
 * requests in flight: an inbox's list, the folder view, thread grouping, folder counts, a
 * thread and a deep page, against GET /v1/me as the baseline (every hop but the query).
 * Prints p50/p99 and a verdict on the aim: p99 under 20 ms at 4 in flight, and p50 at the
 * largest size within 1.5x of p50 at the smallest.
 * Gateway, identity and the mailbox (BENCH_READ_MAILBOXES replicas) run as processes of
 * their own; this one publishes the mail and makes the requests.
 * Env: BENCH_READ_SIZES (10000,100000,1000000), BENCH_READ_KEEP (1: keep the data and the
 * state file .bench-read-state.json; a later run continues from the size reached),
 * BENCH_READ_TENANTS (4; the first is measured with its tk_ key),
 * BENCH_READ_REQUESTS (300 per kind and concurrency), BENCH_READ_MAILBOXES (2),
 * BENCH_PROFILE (a folder for CPU profiles of the services), BENCH_READ_VACUUM_EVERY_S (120: vacuums the mailbox's tables this often while seeding, as autovacuum would),
 * BENCH_READ_PUBLISH_IN_FLIGHT (64 PubAcks awaited at once), BENCH_READ_BACKLOG (20000
 * messages waiting in the ingest stream at most), BENCH_READ_DEEP_PAGE (50).
 * Prints figures; asserts nothing.
 */
import { randomBytes } from "node:crypto";
import { loadavg } from "node:os";
import pg from "pg";
import { connectBus } from "@mam/bus/connection.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { loadConfig as smtpIngressConfig } from "@mam/smtp-ingress/config.ts";
import { TestDnsServer } from "@mam/testing/dns-server.ts";
import { apiClient, type ApiCall } from "@mam/testing/http.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { freePort, runService, untilReady, type RunningProcess } from "@mam/testing/processes.ts";
import { cpuSeconds, preparedSetting, statementsOf } from "./bench-cpu.ts";
import { measure, requestKinds, type Figures } from "./bench-read-load.ts";
import { seed } from "./bench-read-seed.ts";
import { forgetWorld, pooled, provision, readWorld, STATE_FILE, writeWorld, type World } from "./bench-read-world.ts";

const SIZES = (process.env.BENCH_READ_SIZES ?? "10000,100000,1000000")
  .split(",")
  .map((s) => Number(s.trim()))
  .sort((a, b) => a - b);
const KEEP = process.env.BENCH_READ_KEEP === "1";
const REQUESTS = Number(process.env.BENCH_READ_REQUESTS ?? 300);
const MAILBOXES = Number(process.env.BENCH_READ_MAILBOXES ?? 2);
const PUBLISH_IN_FLIGHT = Number(process.env.BENCH_READ_PUBLISH_IN_FLIGHT ?? 64);
const BACKLOG = Number(process.env.BENCH_READ_BACKLOG ?? 20_000);
const DEEP_PAGE = Number(process.env.BENCH_READ_DEEP_PAGE ?? 50);
const VACUUM_EVERY_MS = Number(process.env.BENCH_READ_VACUUM_EVERY_S ?? 120) * 1000;
const WORKSPACES = 100;
/** Filings of a tenant are serialised on its lock: more tenants file in parallel. */
const TENANTS = Number(process.env.BENCH_READ_TENANTS ?? 4);
const INBOXES_PER_WORKSPACE = 10;
const CONCURRENCY = [4, 16];
const AIM_P99_MS = 20;
const AIM_GROWTH = 1.5;

if (SIZES.some((s) => !Number.isInteger(s) || s < 1)) throw new Error(`BENCH_READ_SIZES must be whole numbers: ${process.env.BENCH_READ_SIZES}`);

const fmt = (n: number) => n.toLocaleString("en");
const ms = (x: number) => x.toFixed(1).padStart(7);
/** The machine is shared: figures are read against its load. */
const load = () =>
  `load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")}`;

/** VACUUM (ANALYZE) of every table of a schema; resolves with the seconds it took. */
async function vacuumSchema(url: string, schema: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const t = performance.now();
  try {
    const { rows } = await client.query<{ t: string }>("select tablename as t from pg_tables where schemaname = $1", [schema]);
    for (const { t: table } of rows) await client.query(`vacuum (analyze) ${client.escapeIdentifier(schema)}.${client.escapeIdentifier(table)}`);
  } finally {
    await client.end();
  }
  return (performance.now() - t) / 1000;
}

/**
 * Stands in for autovacuum during a long seed (this machine's Postgres runs without it, and
 * a million filings leave the outbox and the thread rows so full of dead tuples that filing
 * falls from about 500/s to 100/s): vacuums the schema every `everyMs` until stopped.
 * Plain VACUUM takes no lock that filing waits on. Resolves with the rounds and seconds spent.
 */
function vacuumWhile(url: string, schema: string, everyMs: number): { stop: () => Promise<{ rounds: number; seconds: number }> } {
  let running = true;
  let wake: () => void = () => {};
  const loop = (async () => {
    let rounds = 0;
    let seconds = 0;
    while (running) {
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, everyMs);
      });
      if (!running) break;
      seconds += await vacuumSchema(url, schema);
      rounds++;
    }
    return { rounds, seconds };
  })();
  return {
    stop: () => {
      running = false;
      wake();
      return loop;
    },
  };
}

/** How many messages the API counts over every tenant: filed ones are in the inbox folder or archived. */
async function filedThroughApi(api: ApiCall, w: World): Promise<number> {
  let n = 0;
  for (const t of w.tenants) {
    const r = await api("GET", "/v1/messages/folders/counts", { key: t.key });
    if (r.status !== 200) throw new Error(`folder counts: ${r.status} ${JSON.stringify(r.body)}`);
    n += r.body.inbox.total + r.body.archived.total;
  }
  return n;
}

/**
 * Marks a share of the newest mail as a reader would: most read, some starred, some archived
 * (through the API, one PATCH each), so counts and thread grouping meet a mix, not all unread.
 */
async function readSome(api: ApiCall, w: World, count: number): Promise<number> {
  const perInbox = 10;
  const boxes = Array.from({ length: Math.ceil(count / perInbox) }, (_, k) => w.inboxes[(k * 37 + w.seeded) % w.inboxes.length]!);
  const done = await pooled(boxes, 8, async (inbox) => {
    const r = await api("GET", `/v1/inboxes/${inbox.id}/messages?limit=${perInbox}`, { key: inbox.key });
    let n = 0;
    for (const [j, m] of (r.body?.messages ?? []).entries()) {
      const flags = j < 6 ? { isRead: true } : j === 6 ? { isRead: true, isStarred: true } : j === 7 ? { isArchived: true } : null;
      if (!flags) continue;
      const p = await api("PATCH", `/v1/inboxes/${inbox.id}/messages/${m.id}`, { key: inbox.key, body: flags });
      if (p.status === 200) n++;
      else process.stdout.write(`  !!! PATCH ${p.status} ${JSON.stringify(p.body).slice(0, 200)}\n`);
    }
    return n;
  });
  return done.reduce((a, b) => a + b, 0);
}

function printTable(size: number, rows: Record<string, Figures>, kinds: string[]): void {
  const head = CONCURRENCY.map((c) => `${`${c} in flight`.padEnd(10)}    p50 ms  p99 ms     /s`).join("   ");
  process.stdout.write(`\nat ${fmt(size)} messages, ${REQUESTS} requests each (${load()})\n  ${"".padEnd(36)} ${head}   errors\n`);
  for (const k of kinds) {
    const cells = CONCURRENCY.map((c) => {
      const f = rows[`${k} @${c}`]!;
      return `${"".padEnd(10)} ${ms(f.p50)} ${ms(f.p99)} ${f.perSecond.toFixed(0).padStart(6)}`;
    });
    const errors = CONCURRENCY.reduce((sum, c) => sum + rows[`${k} @${c}`]!.errors, 0);
    process.stdout.write(`  ${k.padEnd(36)} ${cells.join("   ")}   ${errors ? `!!! ${errors}` : "0"}\n`);
  }
}

const CLIENT = "bench process (client)";
/** Where a request's CPU goes, at 4 in flight: each process's ms per request (the mailbox's replicas summed). */
function printCpu(rows: Record<string, Figures>, kinds: string[]): void {
  const columns: [string, (cpu: Record<string, number>) => number][] = [
    ["client", (c) => c[CLIENT] ?? 0],
    ["gateway", (c) => c.gateway ?? 0],
    ["identity", (c) => c.identity ?? 0],
    ["mailbox", (c) => Object.entries(c).reduce((sum, [name, ms]) => (name.startsWith("mailbox") ? sum + ms : sum), 0)],
    ["postgres", (c) => c.postgres ?? 0],
    ["nats", (c) => c["nats-server"] ?? 0],
  ];
  const cells = (values: number[]) => values.map((v) => v.toFixed(2).padStart(9)).join("");
  process.stdout.write(
    `\n  CPU ms per request at 4 in flight (every postgres and nats-server process of the machine counted), and Postgres statements per request\n` +
      `  ${"".padEnd(36)}${columns.map(([name]) => name.padStart(9)).join("")}    total  statements\n`,
  );
  for (const k of kinds) {
    const f = rows[`${k} @4`];
    if (!f?.cpuMs) continue;
    const values = columns.map(([, of]) => of(f.cpuMs!));
    process.stdout.write(`  ${k.padEnd(36)}${cells(values)}${cells([values.reduce((a, b) => a + b, 0)])}${(f.statements?.toFixed(2) ?? "").padStart(12)}\n`);
  }
}

/** The aim, over every size measured (this run's and, with a kept state, earlier runs'). */
function verdict(figures: World["figures"]): void {
  const sizes = Object.keys(figures)
    .map(Number)
    .sort((a, b) => a - b);
  if (!sizes.length) return;
  const slow = sizes.flatMap((s) => {
    const over = Object.entries(figures[s]!).filter(([key, f]) => key.endsWith(" @4") && f.p99 >= AIM_P99_MS);
    return over.length ? [`at ${fmt(s)}: ${over.map(([key, f]) => `${key.slice(0, -3)} ${f.p99.toFixed(1)}`).join(", ")} (ms)`] : [];
  });
  const [small, large] = [sizes[0]!, sizes.at(-1)!];
  const grown: string[] = [];
  if (large > small)
    for (const [key, f] of Object.entries(figures[large]!)) {
      const base = figures[small]![key];
      if (key.endsWith(" @4") && base && f.p50 > AIM_GROWTH * base.p50)
        grown.push(`${key.slice(0, -3)}: p50 ${base.p50.toFixed(1)} → ${f.p50.toFixed(1)} ms (${(f.p50 / base.p50).toFixed(2)}x)`);
    }
  const errors = sizes.reduce((sum, s) => sum + Object.values(figures[s]!).reduce((a, f) => a + f.errors, 0), 0);
  process.stdout.write(`\nverdict (sizes ${sizes.map(fmt).join(", ")}):\n`);
  process.stdout.write(`  p99 < ${AIM_P99_MS} ms at 4 in flight: ${slow.length ? `NO\n    ${slow.join("\n    ")}` : "yes, every kind at every size"}\n`);
  if (large > small)
    process.stdout.write(
      `  p50 at ${fmt(large)} within ${AIM_GROWTH}x of p50 at ${fmt(small)} (4 in flight): ${grown.length ? `NO\n    ${grown.join("\n    ")}` : "yes, every kind"}\n`,
    );
  else process.stdout.write("  growth: one size only, nothing to compare\n");
  if (errors) process.stdout.write(`  !!! ${errors} wrong answers in all: the figures above are not to be trusted\n`);
}

const previous = readWorld();
const iso = isolate(previous?.tag);
const silent = createLogger("bench-read", "silent");
const operatorKey = `sa_${randomBytes(32).toString("base64url")}`;
const children: RunningProcess[] = [];
// A local resolver that answers at once (NXDOMAIN): the mailbox checks SPF/DKIM/DMARC of every message.
const dns = new TestDnsServer();
let world: World | undefined = previous;
const bus = await connectBus({ url: iso.urls.NATS_URL, prefix: iso.prefix, name: "bench-read", logger: silent });
try {
  const resolver = await dns.start();
  const gatewayPort = await freePort();
  // DB_PREPARED_STATEMENTS from the bench's environment goes to the services (0 compares without).
  const base = { ...iso.env, MAIL_DOMAIN: "bench.test", LOG_LEVEL: "warn", ...preparedSetting() };
  const start = async (name: string, env: Record<string, string>, health: number) => {
    const p = runService(
      `services/${name}/src/main.ts`,
      { ...base, HEALTH_PORT: String(health), DB_SCHEMA: iso.schema(name), ...env },
      // BENCH_PROFILE=<dir>: each service writes a V8 CPU profile there when it stops.
      process.env.BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [],
    );
    children.push(p);
    // A migration that backfills a read model over a large kept data set takes minutes.
    await untilReady(p, health, name, 30 * 60_000);
    return p;
  };
  const services: Record<string, number> = {};
  services.gateway = (
    await start(
      "gateway",
      {
        PORT: String(gatewayPort),
        SCOPE_PRIVATE_KEY: Buffer.from(iso.scopeKeys.privateKeyPem).toString("base64"),
        RATE_LIMIT_MAX: "100000000",
        TENANT_RATE_LIMIT_MAX: "100000000",
      },
      gatewayPort,
    )
  ).child.pid!;
  // Where the services with a database tell their statements (their health ports serve /metrics).
  const healthPorts = new Map<string, number>();
  const withDatabase = async (name: string, env: Record<string, string>) => {
    const port = await freePort();
    healthPorts.set(name, port);
    return (await start(name.split(" ")[0]!, env, port)).child.pid!;
  };
  services.identity = await withDatabase("identity", { SUPER_ADMIN_KEY: operatorKey });
  // One after the other: the first applies the migrations.
  const filers: Record<string, number> = {};
  for (let i = 1; i <= MAILBOXES; i++) filers[`mailbox ${i}`] = await withDatabase(`mailbox ${i}`, { DNS_SERVERS: resolver });
  Object.assign(services, filers);
  const api = apiClient(`http://127.0.0.1:${gatewayPort}`);

  if (world) process.stdout.write(`continuing ${iso.tag} from ${STATE_FILE}: ${fmt(world.seeded)} messages filed\n`);
  else {
    const t = performance.now();
    world = await provision(api, operatorKey, iso.tag, TENANTS, WORKSPACES, INBOXES_PER_WORKSPACE);
    process.stdout.write(
      `provisioned ${TENANTS} tenants, ${WORKSPACES} workspaces, ${world.inboxes.length} inboxes in ${((performance.now() - t) / 1000).toFixed(1)} s\n`,
    );
  }
  if (KEEP) writeWorld(world);
  const w = world;
  const inlineLimit = smtpIngressConfig(iso.env).INGEST_INLINE_BYTES;

  for (const size of SIZES) {
    if (size < w.seeded) {
      process.stdout.write(`\n${fmt(size)}: skipped, ${fmt(w.seeded)} are filed already\n`);
      continue;
    }
    if (size > w.seeded) {
      const count = size - w.seeded;
      process.stdout.write(`\nseeding ${fmt(w.seeded)} → ${fmt(size)} (${MAILBOXES} mailbox processes, ${load()})\n`);
      const SELF = "bench process (publisher)";
      const cpuBefore = cpuSeconds(filers, SELF);
      const vacuuming = vacuumWhile(iso.urls.DATABASE_URL, iso.schema("mailbox"), VACUUM_EVERY_MS);
      const r = await seed({
        bus,
        inboxes: w.inboxes,
        from: w.seeded,
        to: size,
        inFlight: PUBLISH_IN_FLIGHT,
        backlog: BACKLOG,
        inlineLimit,
        logger: silent,
      });
      const cpuAfter = cpuSeconds(filers, SELF);
      const vacuumed = await vacuuming.stop();
      const filed = await filedThroughApi(api, w);
      process.stdout.write(
        `  ${fmt(count)} messages: published in ${r.publishSeconds.toFixed(1)} s, all filed after ${r.totalSeconds.toFixed(1)} s: ` +
          `${((r.totalSeconds * 1000) / count).toFixed(2)} s per 1,000, filing ${(count / r.totalSeconds).toFixed(0)}/s\n`,
      );
      // nats-server and postgres are not shown: on a shared machine their processes serve others too, and come and go.
      const cpu = [SELF, ...Object.keys(filers)].map((name) => `${name} ${(((cpuAfter.get(name)! - cpuBefore.get(name)!) * 1000) / count).toFixed(2)}`);
      process.stdout.write(`  CPU ms per message: ${cpu.join(", ")}\n`);
      if (vacuumed.rounds) process.stdout.write(`  vacuumed ${vacuumed.rounds} times while seeding (${vacuumed.seconds.toFixed(0)} s), as autovacuum would\n`);
      process.stdout.write(filed === size ? `  the API counts ${fmt(filed)}\n` : `  !!! the API counts ${fmt(filed)} messages, ${fmt(size)} expected\n`);
      const marked = await readSome(api, w, Math.min(2_000, Math.ceil(count / 100)));
      process.stdout.write(`  ${marked} of the newest marked read, starred or archived\n`);
      w.seeded = size;
      if (KEEP) writeWorld(w);
    }
    // Measured as a server with autovacuum would be (this machine's Postgres runs without it,
    // and a million upserts leave the outbox and the thread rows full of dead tuples).
    const vacuumed = await vacuumSchema(iso.urls.DATABASE_URL, iso.schema("mailbox"));
    process.stdout.write(`  vacuum (analyze) of the mailbox's tables: ${vacuumed.toFixed(1)} s\n`);
    const kinds = await requestKinds(api, w, DEEP_PAGE);
    const rows: Record<string, Figures> = {};
    const sample = () => cpuSeconds(services, CLIENT);
    const statements = async () => [...(await statementsOf(healthPorts)).values()].reduce((a, b) => a + b, 0);
    for (const c of CONCURRENCY) for (const k of kinds) rows[`${k.name} @${c}`] = await measure(api, k, REQUESTS, c, sample, statements);
    printTable(
      size,
      rows,
      kinds.map((k) => k.name),
    );
    printCpu(
      rows,
      kinds.map((k) => k.name),
    );
    w.figures[size] = rows;
    if (KEEP) writeWorld(w);
  }
  verdict(w.figures);
} finally {
  for (const c of children) c.child.kill("SIGTERM");
  await Promise.all(children.map((c) => c.exited));
  await bus.nc.close();
  await dns.stop();
  if (KEEP && world) process.stdout.write(`\nkept ${iso.tag} (schemas ${iso.tag}_*, NATS prefix ${iso.prefix}); ${STATE_FILE} continues it\n`);
  else {
    await iso.cleanup();
    forgetWorld();
  }
}
