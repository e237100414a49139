/**
 * pnpm bench:api — latency and throughput of sending and of listing messages through the
 * whole stack (HTTP → gateway → NATS → mailbox → Postgres) with 100k messages stored, and,
 * in the same run, of bare Postgres doing the same reads and writes as the baseline.
 * Prints figures; asserts nothing. Uses the machine's servers on a schema and prefix of its own.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { loadConfig as gatewayConfig } from "@mam/gateway/config.ts";
import { GatewayService } from "@mam/gateway/service.ts";
import { loadConfig as identityConfig } from "@mam/identity/config.ts";
import { IdentityService } from "@mam/identity/service.ts";
import { loadConfig as mailboxConfig } from "@mam/mailbox/config.ts";
import { MailboxService } from "@mam/mailbox/service.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { apiClient } from "@mam/testing/http.ts";
import { isolate } from "@mam/testing/isolation.ts";

const STORED = Number(process.env.BENCH_MESSAGES ?? 100_000);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 400);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);

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
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!;
  return { p50: at(0.5), p99: at(0.99), perSecond: n / elapsed };
}

const row = (name: string, f: Figures, base?: Figures) =>
  `${name.padEnd(34)} p50 ${f.p50.toFixed(2).padStart(8)} ms   p99 ${f.p99.toFixed(2).padStart(8)} ms   ${f.perSecond.toFixed(0).padStart(7)} /s` +
  (base ? `   (${(f.perSecond / base.perSecond).toFixed(2)}x of baseline throughput)` : "");

const iso = isolate();
const silent = createLogger("bench", "silent");
const operatorKey = `sa_${randomBytes(32).toString("base64url")}`;
const identity = new IdentityService(identityConfig({ ...iso.env, DB_SCHEMA: iso.schema("identity"), SUPER_ADMIN_KEY: operatorKey }), { logger: silent });
const mailbox = new MailboxService(mailboxConfig({ ...iso.env, DB_SCHEMA: iso.schema("mailbox"), MAIL_DOMAIN: "bench.test" }), { logger: silent });
const gateway = new GatewayService(
  gatewayConfig({ ...iso.env, SCOPE_PRIVATE_KEY: Buffer.from(iso.scopeKeys.privateKeyPem).toString("base64"), RATE_LIMIT_MAX: "100000000" }),
  { logger: silent },
);
const client = new pg.Client({ connectionString: iso.urls.DATABASE_URL });

try {
  await identity.start();
  await mailbox.start();
  await gateway.start();
  await client.connect();
  const api = apiClient(`http://127.0.0.1:${gateway.port}`);
  const tenant = (await api("POST", "/v1/tenants", { key: operatorKey, body: { name: "Bench" } })).body;
  const tk = tenant.key.key as string;
  const reader = (await api("POST", "/v1/inboxes", { key: tk, body: { username: "reader" } })).body;
  const writer = (await api("POST", "/v1/inboxes", { key: tk, body: { username: "writer" } })).body;
  const schema = iso.schema("mailbox");
  const ws = tenant.workspace.id as string;

  process.stdout.write(`seeding ${STORED} messages into one inbox's read model…\n`);
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

  const sendApi = await measure(REQUESTS, CONCURRENCY, async (i) => {
    const r = await api("POST", `/v1/inboxes/${writer.id}/send`, {
      key: writer.apiKey,
      body: { to: "reader@bench.test", subject: `Bench ${i}`, plainBody: "x".repeat(2000), verified: true },
    });
    if (r.status !== 200) throw new Error(`send failed: ${r.status} ${JSON.stringify(r.body)}`);
  });
  const sendPg = await measure(REQUESTS, CONCURRENCY, async (i) => {
    const c = await pool.connect();
    try {
      await c.query("begin");
      await c.query(`insert into ${schema}.blobs (workspace_id, hash, size, data, created_at) values ($1, $2, 2000, $3, now()) on conflict do nothing`, [
        ws,
        `bench-${i}`,
        Buffer.alloc(2000, 120),
      ]);
      await c.query(
        `insert into ${schema}.messages (workspace_id, message_id, inbox_id, tenant_id, thread_id, direction, status, from_address, to_addresses, cc_addresses,
           bcc_addresses, subject, preview, raw_hash, raw_size, message_id_header, "references", attachments, labels, is_read, version, created_at, updated_at)
         values ($1, gen_random_uuid(), $2, $3, gen_random_uuid(), 'outbound', 'sent', 'writer@bench.test', '["reader@bench.test"]', '[]', '[]', $4, 'x',
           $5, 2000, '<x>', '[]', '[]', '[]', true, 1, now(), now())`,
        [ws, writer.id, tenant.tenant.id, `Bench ${i}`, `bench-${i}`],
      );
      await c.query("commit");
    } finally {
      c.release();
    }
  });
  await pool.end();

  process.stdout.write(`\n${STORED} messages stored, ${REQUESTS} requests, ${CONCURRENCY} in flight\n`);
  process.stdout.write(`${row("list 50 (bare Postgres, baseline)", listPg)}\n${row("list 50 (GET /v1/.../messages)", listApi, listPg)}\n`);
  process.stdout.write(`${row("send (bare Postgres insert, baseline)", sendPg)}\n${row("send (POST /v1/.../send)", sendApi, sendPg)}\n`);
} finally {
  await client.end().catch(() => undefined);
  await gateway.destroy().catch(() => undefined);
  await mailbox.destroy().catch(() => undefined);
  await identity.destroy().catch(() => undefined);
  await iso.cleanup();
}
