import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAILBOX_CONTEXT } from "@mam/contracts/mailbox-events.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { TestDnsServer } from "@mam/testing/dns-server.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

type Rec = { purpose: string; name: string; value: string; type: string; priority: number | null };
type Tenant = Awaited<ReturnType<typeof provisionTenant>>;

/**
 * A custom-domain address must not outlive its domain: the domain check before the tenant's
 * lock can be stale by the time the command holds it. The interleaving is made certain by
 * holding the tenant's lock ourselves: the removal queues on it first, then the create (its
 * lockless check passed, the domain still there), and Postgres grants them in that order.
 */
describe("a custom domain removed while an address on it is being created", () => {
  const dns = new TestDnsServer();
  let s: Stack;
  let t: Tenant;
  let db: pg.Client;
  let watcher: pg.Client;

  function publish(records: Rec[]) {
    const zones = new Map<string, { MX: { exchange: string; priority: number }[]; TXT: string[] }>();
    for (const r of records) {
      const z = zones.get(r.name) ?? { MX: [], TXT: [] };
      if (r.type === "MX") z.MX.push({ exchange: r.value, priority: r.priority ?? 10 });
      else z.TXT.push(r.value);
      zones.set(r.name, z);
    }
    for (const [name, z] of zones) dns.set(name, z);
  }

  async function verifiedDomain(domain: string) {
    const added = await s.api("POST", "/v1/domains", { key: t.key.key, body: { domain } });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    publish(added.body.dnsRecords);
    const v = await s.api("POST", `/v1/domains/${domain}/verify`, { key: t.key.key });
    expect(v.body.status).toBe("verified");
  }

  /** The tenant's command lock (see lockTenant), held by this test until `release`. */
  const lockKey = () => `${MAILBOX_CONTEXT}:${t.tenant.id}`;
  async function holdTenantLock() {
    await db.query("begin");
    await db.query("select pg_advisory_xact_lock(hashtextextended($1, 0))", [lockKey()]);
    return { release: () => db.query("commit") };
  }
  /** How many transactions wait for the tenant's lock (asked on a connection of its own: `db` holds the lock). */
  async function waiting(): Promise<number> {
    const r = await watcher.query(
      `select count(*)::int as n from pg_locks, (select hashtextextended($1, 0) as k) key
       where locktype = 'advisory' and not granted and objsubid = 1
         and classid::bigint = (key.k >> 32) & 4294967295 and objid::bigint = key.k & 4294967295`,
      [lockKey()],
    );
    return r.rows[0].n;
  }
  const queued = (n: number, what: string) => waitFor(async () => (await waiting()) >= n, { timeoutMs: 10_000, what });

  beforeAll(async () => {
    const server = await dns.start();
    s = new Stack({ logLevel: "warn", mailboxEnv: { DNS_SERVERS: server } });
    await s.start();
    t = await provisionTenant(s, "Racer");
    db = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    watcher = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await Promise.all([db.connect(), watcher.connect()]);
  });
  afterAll(async () => {
    await db?.end();
    await watcher?.end();
    await s.stop();
    await dns.stop();
  });

  it("an inbox: the removal committed first, the create is refused (400) and no address on the domain remains", async () => {
    await verifiedDomain("gone.example");
    const lock = await holdTenantLock();
    let removal: ReturnType<Stack["api"]>;
    let create: ReturnType<Stack["api"]>;
    try {
      removal = s.api("DELETE", "/v1/domains/gone.example", { key: t.key.key });
      await queued(1, "the removal waiting for the lock");
      create = s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "alice", domain: "gone.example" } });
      await queued(2, "the create waiting for the lock");
    } finally {
      await lock.release();
    }
    expect((await removal!).status).toBe(200);
    const created = await create!;
    expect(created.status, JSON.stringify(created.body)).toBe(400);
    expect(created.body).toMatchObject({ code: "VALIDATION_ERROR", error: expect.stringMatching(/verified custom domain of this workspace/) });
    const inboxes = (await s.api("GET", "/v1/inboxes", { key: t.key.key })).body.inboxes as { email: string }[];
    expect(inboxes.map((i) => i.email)).not.toContain("alice@gone.example");
    const schema = s.iso.schema("mailbox");
    const claims = await db.query(`select address from ${schema}.address_claims where address like '%@gone.example'`);
    expect(claims.rows).toEqual([]);
  });

  it("an alias: the removal committed first, the alias is refused (400) and no address on the domain remains", async () => {
    await verifiedDomain("lost.example");
    const inbox = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "bob" } })).body;
    const lock = await holdTenantLock();
    let removal: ReturnType<Stack["api"]>;
    let alias: ReturnType<Stack["api"]>;
    try {
      removal = s.api("DELETE", "/v1/domains/lost.example", { key: t.key.key });
      await queued(1, "the removal waiting for the lock");
      alias = s.api("POST", `/v1/inboxes/${inbox.id}/addresses`, { key: t.key.key, body: { email: "bob@lost.example" } });
      await queued(2, "the alias waiting for the lock");
    } finally {
      await lock.release();
    }
    expect((await removal!).status).toBe(200);
    const added = await alias!;
    expect(added.status, JSON.stringify(added.body)).toBe(400);
    expect(added.body).toMatchObject({ code: "VALIDATION_ERROR", error: expect.stringMatching(/custom domain verified in this workspace/) });
    expect((await s.api("GET", `/v1/inboxes/${inbox.id}`, { key: t.key.key })).body.addresses).toHaveLength(1);
    const schema = s.iso.schema("mailbox");
    const claims = await db.query(`select address from ${schema}.address_claims where address like '%@lost.example'`);
    expect(claims.rows).toEqual([]);
  });
});
