import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { DeliveryReads } from "@mam/mailbox/delivery/delivery-reads.ts";
import { outcomeRecord } from "@mam/mailbox/delivery/outcomes.ts";
import { Filer, INBOX_GONE_REASON } from "@mam/mailbox/delivery/receive.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

type Inbox = { id: string; email: string; apiKey: string; workspaceId: string };
type Delivery = { recipient: string; status: string; reason: string | null };

/**
 * A sent message's copy for an inbox of the platform is filed by the delivery worker after it
 * read the recipient's claim; the inbox may be deleted in between. The sender is then told
 * that recipient bounced, not that it was delivered.
 */
describe("a local copy whose inbox was deleted after its claim was read", () => {
  const s = new Stack({ logLevel: "warn" });
  const client = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
  let sender: { tenantId: string; tenantKey: string; inbox: Inbox };
  let other: { tenantId: string; key: string };

  const inboxOf = async (key: string, username: string): Promise<Inbox> => {
    const r = await s.api("POST", "/v1/inboxes", { key, body: { username } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body;
  };
  const deliveries = async (id: string): Promise<Delivery[]> =>
    (await s.api("GET", `/v1/inboxes/${sender.inbox.id}/messages/${id}`, { key: sender.inbox.apiKey })).body.deliveries;
  const settled = (id: string) =>
    waitFor(async () => (await deliveries(id)).every((d) => d.status !== "pending"), { timeoutMs: 15_000, intervalMs: 100, what: "an outcome" });

  /** The mailbox's lock of a tenant (see event-sourcing.ts), held by this session until released. */
  const lockKey = (tenantId: string) =>
    client.query<{ key: string }>("select hashtextextended($1, 0)::text as key", [`mailbox:${tenantId}`]).then((r) => r.rows[0]!.key);
  const waitersOn = async (key: string) =>
    Number(
      (
        await client.query<{ n: string }>(
          `select count(*) as n from pg_locks l join pg_stat_activity a on a.pid = l.pid
           where l.locktype = 'advisory' and not l.granted and l.objsubid = 1 and ((l.classid::bigint << 32) | l.objid::bigint) = $1::bigint
             and a.query like '%lock_for_decision%'`,
          [key],
        )
      ).rows[0]!.n,
    );

  beforeAll(async () => {
    await s.start();
    await client.connect();
    const t1 = await provisionTenant(s, "Sender");
    sender = { tenantId: t1.tenant.id, tenantKey: t1.key.key, inbox: await inboxOf(t1.key.key, "gone-sender") };
    const t2 = await provisionTenant(s, "Other");
    other = { tenantId: t2.tenant.id, key: t2.key.key };
  });
  afterEach(() => vi.restoreAllMocks());
  afterAll(async () => {
    await client.end();
    await s.stop();
  });

  it("to another tenant's inbox: the recipient bounces, saying why, and nothing is filed", async () => {
    const target = await inboxOf(other.key, "deleted-meanwhile");
    const key = await lockKey(other.tenantId);
    await client.query("select pg_advisory_lock($1::bigint)", [key]);
    let deleted: Promise<{ status: number }> | undefined;
    try {
      // The deletion waits for the tenant's lock first; the worker's filing, after reading the claim, behind it.
      deleted = s.api("DELETE", `/v1/inboxes/${target.id}`, { key: other.key });
      await waitFor(async () => (await waitersOn(key)) === 1, { timeoutMs: 10_000, what: "the deletion waiting" });
      const sent = await s.api("POST", `/v1/inboxes/${sender.inbox.id}/send`, {
        key: sender.inbox.apiKey,
        body: { to: target.email, subject: "Too late", plainBody: "x", verified: true },
      });
      expect(sent.status, JSON.stringify(sent.body)).toBe(200);
      await waitFor(async () => (await waitersOn(key)) === 2, { timeoutMs: 10_000, what: "the filing waiting behind it" });
      await client.query("select pg_advisory_unlock($1::bigint)", [key]);
      expect((await deleted).status).toBe(200);
      await settled(sent.body.id);
      expect(await deliveries(sent.body.id)).toMatchObject([{ recipient: target.email, status: "bounced", reason: INBOX_GONE_REASON }]);
      expect((await s.api("GET", `/v1/inboxes/${sender.inbox.id}/messages/${sent.body.id}`, { key: sender.inbox.apiKey })).body.status).toBe("bounced");
      const copies = await s.mailbox!.ctx.db.selectFrom("messages").select("message_id").where("source_message_id", "=", sent.body.id).execute();
      expect(copies).toEqual([]);
    } finally {
      await client.query("select pg_advisory_unlock_all()");
      await deleted;
    }
  });

  // As the worker files a copy for one inbox of the sender's own tenant in another workspace:
  // the copy and its record in one transaction, after the recipients' claims are read (right
  // after which the inbox is deleted here). With bytes too large for the batch's statement,
  // the copy's inbox is looked at before they are stored. (The class is spied on, not its
  // module mocked: the suite's files share loaded modules, see vitest.config.ts.)
  it.each([
    ["small", 0],
    ["large", 300 * 1024],
  ])("to an inbox of the sender's tenant in another workspace (%s): the record that goes with the copy says bounced", async (_size, bytes) => {
    const ws = await s.api("POST", "/v1/workspaces", { key: sender.tenantKey, body: { name: `Other ${bytes}` } });
    expect(ws.status, JSON.stringify(ws.body)).toBe(201);
    const target = (await s.api("POST", "/v1/inboxes", { key: sender.tenantKey, body: { username: `gone-later-${bytes}`, workspaceId: ws.body.id } }))
      .body as Inbox;
    expect(target.workspaceId).toBe(ws.body.id);
    const readClaims = DeliveryReads.prototype.claimsOf;
    let deletion: number | undefined;
    vi.spyOn(DeliveryReads.prototype, "claimsOf").mockImplementationOnce(async function (this: DeliveryReads, addresses: string[]) {
      const claims = await readClaims.call(this, addresses);
      deletion = (await s.api("DELETE", `/v1/inboxes/${target.id}`, { key: sender.tenantKey })).status;
      return claims;
    });
    const attachments = bytes ? [{ filename: "big.bin", contentType: "application/octet-stream", content: Buffer.alloc(bytes, 7).toString("base64") }] : [];
    const sent = await s.api("POST", `/v1/inboxes/${sender.inbox.id}/send`, {
      key: sender.inbox.apiKey,
      body: { to: target.email, subject: `Gone while read ${bytes}`, plainBody: "x", verified: true, attachments },
    });
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    await settled(sent.body.id);
    expect(deletion).toBe(200);
    expect(await deliveries(sent.body.id)).toMatchObject([{ recipient: target.email, status: "bounced", reason: INBOX_GONE_REASON }]);
    const copies = await s.mailbox!.ctx.db.selectFrom("messages").select("message_id").where("source_message_id", "=", sent.body.id).execute();
    expect(copies).toEqual([]);
  });

  it("a copy filed before its inbox was deleted, filed again (its event delivered twice): filed, and still delivered", async () => {
    const target = await inboxOf(sender.tenantKey, "filed-then-gone");
    const sent = await s.api("POST", `/v1/inboxes/${sender.inbox.id}/send`, {
      key: sender.inbox.apiKey,
      body: { to: target.email, subject: "Filed, then gone", plainBody: "x", verified: true },
    });
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    await settled(sent.body.id);
    expect(await deliveries(sent.body.id)).toMatchObject([{ recipient: target.email, status: "delivered" }]);
    expect((await s.api("DELETE", `/v1/inboxes/${target.id}`, { key: sender.tenantKey })).status).toBe(200);
    const ref = { tenantId: sender.tenantId, workspaceId: sender.inbox.workspaceId, messageId: sent.body.id };
    const facts = {
      from: { address: sender.inbox.email, name: null },
      to: [target.email],
      cc: [],
      bcc: [],
      replyTo: null,
      subject: "Filed, then gone",
      messageIdHeader: `<${sent.body.id}@agents.test>`,
      inReplyTo: null,
      references: [],
      rawHash: "0".repeat(64),
      rawSize: 0,
      plainHash: null,
      htmlHash: null,
      preview: "",
      attachments: [],
    };
    // As the worker files the copy, with the record of its delivery.
    const result = await new Filer(s.mailbox!.ctx).file(
      { tenant_id: sender.tenantId, workspace_id: target.workspaceId, inbox_id: target.id },
      facts,
      [],
      { dedupeParts: ["local", sent.body.id], sourceMessageId: sent.body.id },
      outcomeRecord(ref, "MessageDelivered", { recipients: [target.email], via: "local" }),
    );
    expect(result).toBe("filed");
    expect(await deliveries(sent.body.id)).toMatchObject([{ recipient: target.email, status: "delivered" }]);
  });
});
