import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAILBOX_CONTEXT } from "@mam/contracts/mailbox-events.ts";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { PROJECTION as MAILBOX_READ_MODEL } from "@mam/mailbox/projections/mailbox-read-model.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { lockTenant } from "@mam/service-kit/event-sourcing.ts";
import { freePort, runService, untilReady, type RunningProcess } from "@mam/testing/processes.ts";
import { truncateMailboxReadModel } from "../support/mailbox-read-model.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

type Inbox = { id: string; email: string };

/** Rounds of each tenant's history; about 25 mailbox events a round. */
const ROUNDS = 12;

/**
 * The mailbox as two replicas rebuilding its read model together: a history where order
 * matters (a flag or a delete before the message it is about is lost; a draft or an inbox
 * deleted before it was saved or created comes back), replayed after the read model was
 * emptied, gives the answers it gave before; so it does when the replica applying it dies
 * halfway and the other takes over.
 */
describe("two mailbox replicas replaying the read model, in stream order per tenant", () => {
  const s = new Stack({ logLevel: "warn", mailboxes: 2, gatewayEnv: { RATE_LIMIT_MAX: "100000" } });
  const tenants: { key: string; tenantId: string; a: Inbox; b: Inbox; rounds: string[] }[] = [];

  async function history(key: string, a: Inbox, b: Inbox, rounds: string[]): Promise<void> {
    for (let r = 0; r < ROUNDS; r++) {
      const x = (await s.api("POST", "/v1/inboxes", { key, body: { username: `round${r}-${a.email.split("@")[0]}` } })).body;
      rounds.push(x.id);
      const drafts: string[] = [];
      for (let d = 0; d < 5; d++)
        drafts.push((await s.api("POST", `/v1/inboxes/${a.id}/drafts`, { key, body: { to: b.email, subject: `d${r}.${d}` } })).body.id);
      for (const d of drafts.slice(0, 3)) expect((await s.api("DELETE", `/v1/inboxes/${a.id}/drafts/${d}`, { key })).status).toBe(200);
      for (let m = 0; m < 3; m++)
        await s.api("POST", `/v1/inboxes/${a.id}/send`, { key, body: { to: b.email, subject: `m${r}.${m}`, plainBody: "hi", verified: true } });
      const received = async () => (await s.api("GET", `/v1/inboxes/${b.id}/messages?limit=100`, { key })).body.messages as { id: string }[];
      await waitFor(async () => (await received()).length >= 3 * (r + 1) - r, { timeoutMs: 20_000, what: `round ${r} delivered` });
      // The newest three: flagged, one deleted.
      const fresh = (await received()).slice(0, 3);
      for (const m of fresh) await s.api("PATCH", `/v1/inboxes/${b.id}/messages/${m.id}`, { key, body: { isStarred: true, isRead: true } });
      expect((await s.api("DELETE", `/v1/inboxes/${b.id}/messages/${fresh[0]!.id}`, { key })).status).toBe(200);
      if (r % 2 === 0) await s.api("DELETE", `/v1/inboxes/${x.id}`, { key });
    }
  }

  /** Everything a tenant's key can read about what it did, without marking anything read. */
  async function snapshot() {
    const out: Record<string, unknown> = {};
    for (const t of tenants) {
      const get = async (path: string) => {
        const r = await s.api("GET", path, { key: t.key });
        return { status: r.status, body: r.body };
      };
      out[`${t.tenantId} inboxes`] = await get("/v1/inboxes?limit=100");
      for (const i of [t.a, t.b]) {
        for (const p of ["messages?limit=100", "drafts?limit=100"]) out[`${i.id}/${p}`] = await get(`/v1/inboxes/${i.id}/${p}`);
      }
      for (const x of t.rounds) out[x] = await get(`/v1/inboxes/${x}`);
      for (const folder of ["inbox", "sent", "starred", "trash"]) out[`${t.tenantId} ${folder}`] = await get(`/v1/messages?folder=${folder}&limit=100`);
      out[`${t.tenantId} counts`] = await get("/v1/messages/folders/counts");
    }
    return out;
  }

  /** The mailbox replicas in this process, stopped; the read model emptied. */
  async function stopAndEmpty(): Promise<void> {
    await Promise.all([s.mailbox!, ...s.mailboxReplicas].map((m) => m.destroy()));
    s.mailbox = undefined;
    s.mailboxReplicas = [];
    await truncateMailboxReadModel(s);
  }

  beforeAll(async () => {
    await s.start();
    await Promise.all(
      ["One", "Two"].map(async (name) => {
        const t = await provisionTenant(s, name);
        const key = t.key.key;
        const inbox = async (u: string) => (await s.api("POST", "/v1/inboxes", { key, body: { username: `${u}-${name.toLowerCase()}` } })).body as Inbox;
        const entry = { key, tenantId: t.tenant.id, a: await inbox("a"), b: await inbox("b"), rounds: [] as string[] };
        tenants.push(entry);
        await history(key, entry.a, entry.b, entry.rounds);
        // Every send delivered before the first snapshot: nothing may still be changing.
        await waitFor(
          async () =>
            ((await s.api("GET", `/v1/inboxes/${entry.a.id}/messages?limit=100&direction=outbound`, { key })).body.messages as { status: string }[]).every(
              (m) => m.status === "delivered",
            ),
          { timeoutMs: 20_000, what: "deliveries settled" },
        );
      }),
    );
  }, 180_000);
  afterAll(() => s.stop());

  it("both replicas restarted at once over an emptied read model: the same answers", async () => {
    const before = await snapshot();
    const events = await s.iso.jetstream(async (jsm) => (await jsm.streams.info(eventsStreamName(s.iso.prefix))).state.messages);
    expect(events).toBeGreaterThan(400);
    await stopAndEmpty();
    await Promise.all([s.startMailbox(), s.startMailboxReplica()]);
    expect(await snapshot()).toEqual(before);
  }, 120_000);

  it("the replica applying the replay killed halfway: the other takes over, in order, and the answers are the same", async () => {
    const before = await snapshot();
    await stopAndEmpty();
    // A command of the first tenant holds its lock (as a slow one would), so the replay stops
    // at its first event with those behind it delivered to the applying replica, unacknowledged.
    const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: s.iso.urls.DATABASE_URL, max: 1 }) }) });
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const lockHeld = new Promise<void>((r) => (locked = r));
    const holding = db.transaction().execute(async (tx) => {
      await lockTenant(tx, MAILBOX_CONTEXT, tenants[0]!.tenantId);
      locked();
      await released;
    });
    await lockHeld;
    const procs: { p: RunningProcess; port: number }[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const port = await freePort();
        const env = { ...s.iso.env, DB_SCHEMA: s.iso.schema("mailbox"), MAIL_DOMAIN: s.mailDomain, HEALTH_PORT: String(port), LOG_LEVEL: "info" };
        procs.push({ p: runService("services/mailbox/src/main.ts", env), port });
      }
      const holds = (x: { p: RunningProcess }) =>
        x.p
          .stdout()
          .split("\n")
          .some((l) => l.includes(`"lease":"${MAILBOX_READ_MODEL}:`) && l.includes('"msg":"lease taken'));
      await waitFor(() => procs.some(holds), { timeoutMs: 60_000, intervalMs: 50, what: "a replica taking the read model's lease" });
      const holder = procs.find(holds)!;
      const standby = procs.find((x) => x !== holder)!;
      const stream = eventsStreamName(s.iso.prefix);
      await waitFor(
        async () => {
          // Not there until the holder declares it anew.
          const info = await s.iso.jetstream((jsm) => jsm.consumers.info(stream, MAILBOX_READ_MODEL).catch(() => undefined));
          return !!info && info.num_ack_pending > 0 && info.num_pending > 0;
        },
        { timeoutMs: 30_000, intervalMs: 50, what: "the replay held up by the first tenant's lock, halfway" },
      );
      holder.p.child.kill("SIGKILL");
      await holder.p.exited;
      release();
      await waitFor(() => holds(standby), { timeoutMs: 30_000, intervalMs: 20, what: "the other replica taking over" });
      await untilReady(standby.p, standby.port, "the replica that took over", 60_000);
      expect(await snapshot()).toEqual(before);
    } finally {
      release();
      await holding.catch(() => undefined);
      await db.destroy();
      for (const { p } of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGTERM");
      await Promise.all(procs.map(({ p }) => p.exited));
    }
  }, 180_000);
});
