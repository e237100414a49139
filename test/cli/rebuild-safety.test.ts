import { randomUUID } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { provisionTenant, Stack } from "../support/stack.ts";
import { mam } from "./run-cli.ts";

/**
 * `mam rebuild mailbox` over two mailbox replicas when things go wrong around it: commands
 * during the replay, a second rebuild asked for, an event still being applied when the reset
 * comes, the lease holder stopped mid-replay, the lease lost while the reset waits, a rebuild
 * recorded that the holder did not start. Each time the rebuild completes (or does not
 * happen at all), the read model answers as before and commands are served again.
 */
describe("mam rebuild when replicas come and go", () => {
  // Logs at info: a lease taken says so (see leaseTaken).
  const s = new Stack({ logLevel: "info", mailboxes: 2 });
  let db: pg.Client;
  let nc: NatsConnection;
  /** The tenant whose events the tests hold up (its lock), and another one whose commands probe. */
  let t: { tenantId: string; workspaceId: string; key: string };
  let probeKey: string;
  let inbox: { id: string; email: string };
  let probes = 0;
  const schema = () => s.iso.schema("mailbox");
  /** The read model's lease (its lock's name: see SingleActive). */
  const lease = () => `mailbox-read-model:${schema()}:${s.iso.prefix}`;

  const rebuilding = async () =>
    (await db.query(`select 1 from ${schema()}.projection_checkpoint where projection = 'mailbox-read-model@rebuild'`)).rows.length === 1;
  /** A command of the other tenant (never held up by the tests' lock). */
  const command = () => s.api("POST", "/v1/inboxes", { key: probeKey, body: { username: `probe${++probes}` } });
  const commandsServed = () => waitFor(async () => (await command()).status < 300, { timeoutMs: 30_000, intervalMs: 200, what: "commands served again" });
  /** The tenant's events wait for its lock, in the replay or the consumer, while the test holds it. */
  async function holdTenant(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await c.connect();
    await c.query("select pg_advisory_lock(hashtextextended($1, 0))", [`mailbox:${t.tenantId}`]);
    return c;
  }
  /**
   * The server process of the connection holding the read model's lease: the one lease
   * connection of this process, which both replicas share. Its advisory key shows in pg_locks
   * as two halves.
   */
  const leaseHolder = async (): Promise<number | undefined> =>
    (
      await db.query(
        `select pid from pg_locks where locktype = 'advisory' and granted and objsubid = 1
           and database = (select oid from pg_database where datname = current_database())
           and ((classid::bigint << 32) | objid::bigint) = hashtextextended($1, 0)`,
        [lease()],
      )
    ).rows[0]?.pid;
  /** How many times a replica took the read model's lease: both share one connection, so its holder's pid does not tell them apart. */
  const leaseTaken = () => s.logs.entries().filter((e) => e.msg === "lease taken: this replica is the active one" && e.lease === lease()).length;
  const waitingOnLock = async (like: string) =>
    (await db.query("select 1 from pg_stat_activity where application_name = $1 and wait_event_type = 'Lock' and query ilike $2", [schema(), like])).rows
      .length > 0;

  async function snapshot() {
    const get = async (p: string) => (await s.api("GET", p, { key: t.key })).body;
    return {
      inbox: await get(`/v1/inboxes/${inbox.id}`),
      inboxes: await get("/v1/inboxes"),
      messages: await get(`/v1/inboxes/${inbox.id}/messages?limit=100`),
      lists: await get(`/v1/inboxes/${inbox.id}/lists`),
    };
  }

  beforeAll(async () => {
    await s.start();
    db = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await db.connect();
    nc = await connect({ servers: s.iso.urls.NATS_URL });
    const p = await provisionTenant(s);
    t = { tenantId: p.tenant.id, workspaceId: p.workspace.id, key: p.key.key };
    probeKey = (await provisionTenant(s)).key.key;
    inbox = (await s.api("POST", "/v1/inboxes", { key: t.key, body: { username: "kept" } })).body;
    await s.api("POST", `/v1/inboxes/${inbox.id}/lists`, { key: t.key, body: { name: "VIP" } });
    const sent = await s.api("POST", `/v1/inboxes/${inbox.id}/send`, {
      key: t.key,
      body: { to: inbox.email, subject: "to self", plainBody: "hi", verified: true },
    });
    expect(sent.status).toBe(200);
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${inbox.id}/messages`, { key: t.key })).body.messages.length === 2, {
      timeoutMs: 15_000,
      what: "sent and received",
    });
    await waitFor(
      async () =>
        (await s.api("GET", `/v1/inboxes/${inbox.id}/messages?direction=outbound`, { key: t.key })).body.messages.every(
          (m: { status: string }) => m.status === "delivered",
        ),
      { timeoutMs: 15_000, what: "delivered" },
    );
  }, 60_000);
  afterAll(async () => {
    await nc?.close();
    await db?.end();
    await s.stop();
  });

  it("refuses commands with 503 mid-rebuild and serves them after; a second `mam rebuild` follows the one under way", { timeout: 90_000 }, async () => {
    const before = await snapshot();
    const held = await holdTenant();
    let first: ReturnType<typeof mam> | undefined;
    try {
      first = mam(s, ["rebuild", "mailbox"], { MAM_KEY: s.operatorKey });
      await waitFor(rebuilding, { timeoutMs: 30_000, what: "the rebuild started" });
      const refused = await command();
      expect({ status: refused.status, body: refused.body }).toEqual({
        status: 503,
        body: { error: "The read model is being rebuilt; retry shortly", code: "UNAVAILABLE" },
      });
      const second = await mam(s, ["rebuild", "mailbox", "--no-wait"], { MAM_KEY: s.operatorKey });
      expect(second.code, second.stderr).toBe(0);
      expect(second.stderr).toMatch(/^a rebuild is under way already: following it; rebuilding mailbox-read-model/);
      expect(second.stdout).toBe("mailbox-read-model: rebuild under way already (follow it with: mam status)\n");
    } finally {
      await held.end();
    }
    const done = await first!;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/^mailbox-read-model rebuilt/);
    expect((await command()).status).toBeLessThan(300);
    expect(await snapshot()).toEqual(before);
  });

  it("lets an event being applied finish before the read model is emptied, however long it waits", { timeout: 90_000 }, async () => {
    expect((await s.api("PATCH", `/v1/inboxes/${inbox.id}`, { key: t.key, body: { displayName: "Before" } })).status).toBe(200);
    // An event the holder has not applied inline (as in a replay): a later update of the same inbox.
    const stream = eventsStreamName(s.iso.prefix);
    const subject = `${s.iso.prefix}evt.mailbox.${t.tenantId}.${t.workspaceId}.InboxUpdated`;
    const last = await (await jetstreamManager(nc)).streams.getMessage(stream, { last_by_subj: subject });
    const template = last!.json<{ id: string; aggregateVersion: number; data: Record<string, unknown> }>();
    const later = { ...template, id: randomUUID(), aggregateVersion: template.aggregateVersion + 1, data: { ...template.data, displayName: "After" } };
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${inbox.id}`, { key: t.key })).body.displayName === "Before", { timeoutMs: 10_000 });

    const held = await holdTenant();
    let rebuilt: ReturnType<typeof mam> | undefined;
    try {
      await jetstream(nc).publish(subject, JSON.stringify(later), { msgID: later.id });
      await waitFor(() => waitingOnLock("%pg_advisory_xact_lock%"), { timeoutMs: 10_000, what: "the event waiting for its tenant's lock" });
      rebuilt = mam(s, ["rebuild", "mailbox"], { MAM_KEY: s.operatorKey });
      // Longer than a consumer stopping otherwise waits for what it handles: the read model is not emptied meanwhile.
      await waitFor(rebuilding, { timeoutMs: 8_000 }).catch(() => undefined);
    } finally {
      await held.end();
    }
    const done = await rebuilt!;
    expect(done.code, done.stderr).toBe(0);
    // Applied before the reset, then replayed in its place: not written into the emptied model and skipped by the replay.
    expect((await s.api("GET", `/v1/inboxes/${inbox.id}`, { key: t.key })).body.displayName).toBe("After");
  });

  it("finishes on the next holder when the lease holder stops mid-replay; commands come back", { timeout: 90_000 }, async () => {
    const before = await snapshot();
    const taken = leaseTaken();
    const held = await holdTenant();
    let rebuilt: ReturnType<typeof mam> | undefined;
    let stopping: Promise<void> | undefined;
    try {
      rebuilt = mam(s, ["rebuild", "mailbox"], { MAM_KEY: s.operatorKey });
      await waitFor(rebuilding, { timeoutMs: 30_000, what: "the rebuild started" });
      // The first mailbox started holds the lease (the other took none since).
      stopping = s.mailbox!.destroy();
      // Taken again: by the other replica, the first one stopping.
      await waitFor(() => leaseTaken() > taken, { timeoutMs: 30_000, intervalMs: 200, what: "the other replica holding the lease" });
      expect(await leaseHolder()).toBeDefined();
      expect((await command()).status).toBe(503);
    } finally {
      await held.end();
    }
    await stopping;
    s.mailbox = undefined;
    const done = await rebuilt!;
    expect(done.code, done.stderr).toBe(0);
    await commandsServed();
    expect(await rebuilding()).toBe(false);
    expect(await snapshot()).toEqual(before);
  });

  it("does not empty the read model when the lease is lost while the reset waits: the rebuild happens on the new holder", { timeout: 120_000 }, async () => {
    await s.startMailboxReplica();
    const before = await snapshot();
    // The reset waits, its tables emptied but not committed, on the test's lock of the projection's checkpoint.
    const blocker = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await blocker.connect();
    await blocker.query("begin");
    await blocker.query(`select 1 from ${schema()}.projection_checkpoint where projection = 'mailbox-read-model' for update`);
    let rebuilt: ReturnType<typeof mam> | undefined;
    try {
      rebuilt = mam(s, ["rebuild", "mailbox"], { MAM_KEY: s.operatorKey });
      await waitFor(() => waitingOnLock("%delete from%projection_checkpoint%"), { timeoutMs: 30_000, what: "the reset waiting" });
      // The holder's lease connection cut (this process's only one: every lease on it is lost,
      // both replicas'). The holder takes nothing again until what ran under its lease has
      // stopped, its waiting reset among it: the other replica takes the lease, on a new connection.
      const holder = await leaseHolder();
      const taken = leaseTaken();
      await db.query("select pg_terminate_backend($1)", [holder]);
      await waitFor(async () => ((await leaseHolder()) ?? holder) !== holder && leaseTaken() > taken, {
        timeoutMs: 30_000,
        intervalMs: 200,
        what: "a new lease holder",
      });
    } finally {
      await blocker.query("commit");
      await blocker.end();
    }
    const done = await rebuilt!;
    expect(done.code, done.stderr).toBe(0);
    await commandsServed();
    expect(await rebuilding()).toBe(false);
    expect(await snapshot()).toEqual(before);
  });

  it("takes over a rebuild recorded that the holder did not start", { timeout: 60_000 }, async () => {
    const before = await snapshot();
    const lastSeq = (await (await jetstreamManager(nc)).streams.info(eventsStreamName(s.iso.prefix))).state.last_seq;
    await db.query(
      `insert into ${schema()}.projection_checkpoint (projection, tenant_key, stream_seq, updated_at) values ('mailbox-read-model@rebuild', '', $1, now())`,
      [lastSeq],
    );
    expect((await command()).status).toBe(503);
    await commandsServed();
    expect(await rebuilding()).toBe(false);
    expect(await snapshot()).toEqual(before);
  });

  it("refuses a tenant's key the operator's requests: the delivery queue and the rebuilds' progress", { timeout: 30_000 }, async () => {
    const status = await mam(s, ["status", "--json"], { MAM_KEY: t.key });
    expect(status.code, status.stderr).toBe(0);
    const refused = { error: "Only the operator key (sa_) may do this (FORBIDDEN)" };
    expect(status.json.deliveryQueue).toEqual(refused);
    expect(status.json.readModels).toEqual({ mailbox: refused, billing: expect.anything() });
  });
});
