import { setTimeout as delay } from "node:timers/promises";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, type ContractReply } from "@mam/bus/rpc-client.ts";
import { FeedEvent, feedStreamName } from "@mam/contracts/realtime-feed.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { projectionNames } from "@mam/service-kit/metrics.ts";
import { mam } from "../cli/run-cli.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/**
 * What other services build on the mailbox's read model while `mam rebuild mailbox`
 * replays it: realtime's feed entries (rendered once, for good) and smtp-ingress's address
 * directory. Neither may be built from a partial model: the mailbox answers UNAVAILABLE
 * until the replay has caught up, and they ask again.
 */
describe("reads of the mailbox's read model during a rebuild", () => {
  const s = new Stack({ logLevel: "silent" });
  let db: pg.Client;
  let nc: NatsConnection;
  let tenantId: string;
  let workspaceId: string;
  let a: { id: string; apiKey: string; email: string };
  let b: { id: string; apiKey: string; email: string };
  let sentId: string;
  const mailbox = () => s.iso.schema("mailbox");
  const rebuilding = async () =>
    (await db.query(`select 1 from ${mailbox()}.projection_checkpoint where projection = 'mailbox-read-model@rebuild'`)).rows.length === 1;

  beforeAll(async () => {
    await s.start();
    db = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await db.connect();
    nc = await connect({ servers: s.iso.urls.NATS_URL });
    const t = await provisionTenant(s);
    tenantId = t.tenant.id;
    workspaceId = t.workspace.id;
    a = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "writer" } })).body;
    b = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "reader" } })).body;
    const sent = await s.api("POST", `/v1/inboxes/${a.id}/send`, {
      key: a.apiKey,
      body: { to: b.email, subject: "rendered once", plainBody: "kept across a rebuild", verified: true },
    });
    expect(sent.status).toBe(200);
    sentId = sent.body.id;
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${a.id}/messages/${sentId}`, { key: a.apiKey })).body.status === "delivered", {
      timeoutMs: 15_000,
      what: "delivered",
    });
  }, 60_000);
  afterAll(async () => {
    await nc?.close();
    await db?.end();
    await s.stop();
  });

  it("realtime renders no entry from a partial model: its message.sent entry has the message once rebuilt", { timeout: 90_000 }, async () => {
    // The tenant's events wait for its lock in the replay: its messages stay out of the model while the test holds it.
    const holder = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await holder.connect();
    await holder.query("select pg_advisory_lock(hashtextextended($1, 0))", [`mailbox:${tenantId}`]);
    let rebuilt: ReturnType<typeof mam> | undefined;
    let asked: ContractReply<typeof RpcContracts.mailbox.feedMessages> | undefined;
    try {
      rebuilt = mam(s, ["rebuild", "mailbox"], { MAM_KEY: s.operatorKey });
      await waitFor(rebuilding, { timeoutMs: 30_000, what: "the rebuild started" });
      // A renderer starting now renders every event so far, this tenant's among them.
      const realtime = await s.startRealtime();
      asked = await call(realtime.ctx.bus, RpcContracts.mailbox.feedMessages, { tenantId, workspaceId, messageIds: [sentId] });
      // The consumer-lag series are read for the projections the store names: the rebuild's record is none.
      const projections = await projectionNames(s.mailbox!.backbone.db)();
      expect(projections).toContain("mailbox-read-model");
      expect(projections.filter((p) => p.includes("@"))).toEqual([]);
      // Longer than the renderer waits for a message the mailbox does not have before rendering without it.
      await delay(4_000);
    } finally {
      await holder.end();
    }
    const done = await rebuilt!;
    expect(done.code, done.stderr).toBe(0);

    let entry: FeedEvent | undefined;
    await waitFor(async () => !!(entry = (await feedEntries()).find((e) => e.eventType === "message.sent")), {
      timeoutMs: 30_000,
      what: "the message.sent entry",
    });
    expect(entry!.message).toMatchObject({ messageId: sentId, plainBody: expect.stringContaining("kept across a rebuild") });
    // What the renderer was told while the tenant's messages were not replayed.
    expect(asked!.ok ? asked!.body.messages : asked!.error.code).toBe("UNAVAILABLE");
  });

  it("the address directory is not served from a model emptied after its sequence was read", { timeout: 90_000 }, async () => {
    // The reset waits, its tables emptied but not committed, on the test's lock of the projection's checkpoint.
    const holder = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await holder.connect();
    await holder.query("begin");
    await holder.query(`select 1 from ${mailbox()}.projection_checkpoint where projection = 'mailbox-read-model' for update`);
    const waiting = async (like: string) =>
      (await db.query("select 1 from pg_stat_activity where wait_event_type = 'Lock' and query ilike $1", [like])).rows.length > 0;
    let rebuilt: ReturnType<typeof mam> | undefined;
    let page: ReturnType<typeof askDirectory> | undefined;
    try {
      rebuilt = mam(s, ["rebuild", "mailbox"], { MAM_KEY: s.operatorKey });
      await waitFor(() => waiting("%delete from%projection_checkpoint%"), { timeoutMs: 30_000, what: "the reset waiting" });
      // smtp-ingress asking for its snapshot now: the sequence is read before the reset, the rows after it.
      page = askDirectory();
      await waitFor(() => waiting("%from%address_claims%"), { timeoutMs: 30_000, what: "the directory's read waiting for the reset" });
    } finally {
      await holder.query("commit");
      await holder.end();
    }
    const during = await page!;
    if (during.ok) expect(during.body.entries.map((e) => e.address)).toEqual(expect.arrayContaining([a.email, b.email]));
    expect(during.ok ? "answered" : during.error.code).toBe("UNAVAILABLE");
    const done = await rebuilt!;
    expect(done.code, done.stderr).toBe(0);
    const after = await askDirectory();
    expect(after.ok && after.body.entries.map((e) => e.address)).toEqual(expect.arrayContaining([a.email, b.email]));
  });

  function askDirectory() {
    return call(s.realtimes[0]!.ctx.bus, RpcContracts.mailbox.directoryPage, { limit: 1000 }, { timeoutMs: 60_000 });
  }

  async function feedEntries(): Promise<FeedEvent[]> {
    const FEED = feedStreamName(s.iso.prefix);
    const n = (await (await jetstreamManager(nc)).streams.info(FEED)).state.messages;
    if (!n) return [];
    const c = await jetstream(nc).consumers.get(FEED);
    const out: FeedEvent[] = [];
    for await (const m of await c.fetch({ max_messages: n, expires: 5_000 })) {
      out.push(FeedEvent.parse(m.json()));
      if (out.length === n) break;
    }
    return out;
  }
});
