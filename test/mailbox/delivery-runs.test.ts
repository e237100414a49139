import { randomUUID } from "node:crypto";
import { type Kysely, sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MailboxEnvelope, MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import type { MailboxDb } from "@mam/mailbox/db/schema.ts";
import { applyMailboxEvents } from "@mam/mailbox/projections/mailbox-read-model.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { mailboxEnvelope } from "../support/events.ts";
import { mailboxSchemaDb } from "../support/mailbox-schema.ts";

/**
 * Runs of deliveries (recordDeliveries): MessageDelivered events between new messages are
 * applied together after the run's messages, with one statement for the outcomes and one for
 * the statuses. The rows must be those of applying the events one at a time: each message's
 * status and version from its own last event, one outcome per recipient (the first recorded),
 * and a bounce never turned back into a delivery.
 */
describe("a run of deliveries applied in one call", () => {
  const iso = isolate();
  let db: Kysely<MailboxDb>;
  /** The SQL of each statement run through `db`, as it ends. */
  const statements: string[] = [];
  const T0 = Date.parse("2026-11-01T00:00:00.000Z");
  const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();
  const TABLES = ["messages", "threads", "thread_folders", "folder_counts", "delivery_outcomes", "applied_events", "projection_checkpoint"];

  const tenantId = randomUUID();
  const workspaceId = randomUUID();
  const inboxId = randomUUID();

  const envelope = (messageId: string, version: number, minutes: number, event: MailboxEvent): MailboxEnvelope =>
    mailboxEnvelope({ tenantId, workspaceId, aggregateId: messageId, aggregateVersion: version, occurredAt: at(minutes) }, event);

  const facts = (messageId: string, subject: string) => ({
    messageId,
    inboxId,
    threadId: randomUUID(),
    from: { address: "agent@agents.test", name: null },
    to: ["x@example.com"],
    cc: [],
    bcc: [],
    replyTo: null,
    subject,
    messageIdHeader: `<${messageId}@agents.test>`,
    inReplyTo: null,
    references: [],
    rawHash: "0".repeat(64),
    rawSize: 10,
    plainHash: null,
    htmlHash: null,
    preview: subject,
    attachments: [],
  });
  const sent = (m: string, minutes: number) => envelope(m, 1, minutes, { type: "MessageSent", schemaVersion: 1, data: facts(m, `sent ${m}`) });
  const received = (m: string, minutes: number) =>
    envelope(m, 1, minutes, { type: "MessageReceived", schemaVersion: 1, data: { ...facts(m, `received ${m}`), sourceMessageId: null } });
  const delivered = (m: string, version: number, minutes: number, recipients: string[]) =>
    envelope(m, version, minutes, { type: "MessageDelivered", schemaVersion: 1, data: { messageId: m, recipients, via: "local" } });
  const bounced = (m: string, version: number, minutes: number, recipients: string[], reason: string) =>
    envelope(m, version, minutes, { type: "MessageBounced", schemaVersion: 1, data: { messageId: m, recipients, reason } });

  /** Applies each batch with one call in a transaction of its own, numbering the events in order. */
  let seq = 0;
  async function apply(...batches: MailboxEnvelope[][]) {
    for (const batch of batches) {
      await db.transaction().execute((tx) =>
        applyMailboxEvents(
          tx,
          batch.map((e) => ({ e, seq: ++seq })),
        ),
      );
    }
  }

  const iso8601 = (d: Date | string) => new Date(d).toISOString();
  async function messages() {
    const rows = await db.selectFrom("messages").select(["message_id", "status", "version", "updated_at"]).orderBy("message_id").execute();
    return rows.map((r) => ({ message_id: r.message_id, status: r.status, version: r.version, updated_at: iso8601(r.updated_at) }));
  }
  async function outcomes() {
    const rows = await db.selectFrom("delivery_outcomes").selectAll().orderBy("message_id").orderBy("recipient").execute();
    return rows.map((r) => ({ message_id: r.message_id, recipient: r.recipient, outcome: r.outcome, at: iso8601(r.at), reason: r.reason }));
  }
  const state = async () => ({ messages: await messages(), outcomes: await outcomes() });
  const reset = () => sql.raw(`truncate ${TABLES.join(", ")}`).execute(db);

  /** Message ids in a known order, so the rows read back (ordered by id) line up with the names. */
  const ids = (n: number) => Array.from({ length: n }, () => randomUUID()).sort();

  beforeAll(async () => {
    db = await mailboxSchemaDb(iso, {
      log: (e) => {
        statements.push(e.query.sql);
      },
    });
  });
  afterAll(async () => {
    await db?.destroy();
    await iso.cleanup();
  });

  it("sends, deliveries and a receipt interleaved: each message's status and version from its last event, one outcome per recipient", async () => {
    const [A, B, C] = ids(3) as [string, string, string];
    const history = [
      sent(A, 0),
      sent(B, 1),
      delivered(A, 2, 2, ["x@example.com", "Y@Example.com"]),
      received(C, 3),
      delivered(B, 2, 4, ["z@example.com"]),
      // A delivery reported again (a retry after a crash), in another case: no second outcome, the version moves on.
      delivered(A, 3, 5, ["X@EXAMPLE.COM"]),
    ];

    await reset();
    const before = statements.length;
    await apply(history);
    const applied = statements.slice(before);
    const together = await state();

    expect(together.messages).toEqual([
      { message_id: A, status: "delivered", version: 3, updated_at: at(5) },
      { message_id: B, status: "delivered", version: 2, updated_at: at(4) },
      { message_id: C, status: "received", version: 1, updated_at: at(3) },
    ]);
    expect(together.outcomes).toEqual([
      { message_id: A, recipient: "x@example.com", outcome: "delivered", at: at(2), reason: null },
      { message_id: A, recipient: "y@example.com", outcome: "delivered", at: at(2), reason: null },
      { message_id: B, recipient: "z@example.com", outcome: "delivered", at: at(4), reason: null },
    ]);
    // The three deliveries are one run: one statement for their outcomes, one for their messages' statuses.
    expect(applied.filter((q) => /^insert into "delivery_outcomes"/.test(q))).toHaveLength(1);
    expect(applied.filter((q) => /^\s*update messages m/.test(q))).toHaveLength(1);

    // The same rows as the events applied one at a time, each in its own transaction (as a consumer catching up would).
    await reset();
    await apply(...history.map((e) => [e]));
    expect(await state()).toEqual(together);
  });

  it("a bounced message stays bounced when a delivery of it comes in a later run; its bounced recipients stay bounced", async () => {
    const [D, E] = ids(2) as [string, string];
    await reset();
    await apply([sent(D, 0), delivered(D, 2, 1, ["x@example.com"])], [bounced(D, 3, 2, ["y@example.com"], "550 no such user")]);
    await apply([sent(E, 3), delivered(D, 4, 4, ["y@example.com", "w@example.com"]), delivered(E, 2, 5, ["x@example.com"])]);

    expect(await messages()).toEqual([
      { message_id: D, status: "bounced", version: 4, updated_at: at(4) },
      { message_id: E, status: "delivered", version: 2, updated_at: at(5) },
    ]);
    expect(await outcomes()).toEqual([
      { message_id: D, recipient: "w@example.com", outcome: "delivered", at: at(4), reason: null },
      { message_id: D, recipient: "x@example.com", outcome: "delivered", at: at(1), reason: null },
      { message_id: D, recipient: "y@example.com", outcome: "bounced", at: at(2), reason: "550 no such user" },
      { message_id: E, recipient: "x@example.com", outcome: "delivered", at: at(5), reason: null },
    ]);
  });

  it("...and when the bounce is in the same call: it ends the run before it, the deliveries after it still find the message bounced", async () => {
    const [D, E] = ids(2) as [string, string];
    const history = [
      sent(D, 0),
      delivered(D, 2, 1, ["x@example.com"]),
      bounced(D, 3, 2, ["y@example.com"], "550 no such user"),
      sent(E, 3),
      delivered(D, 4, 4, ["Y@example.com", "w@example.com"]),
      delivered(E, 2, 5, ["x@example.com"]),
    ];
    await reset();
    await apply(history);
    const together = await state();
    expect(together.messages).toEqual([
      { message_id: D, status: "bounced", version: 4, updated_at: at(4) },
      { message_id: E, status: "delivered", version: 2, updated_at: at(5) },
    ]);
    expect(together.outcomes.filter((o) => o.message_id === D).map((o) => [o.recipient, o.outcome])).toEqual([
      ["w@example.com", "delivered"],
      ["x@example.com", "delivered"],
      ["y@example.com", "bounced"],
    ]);
    await reset();
    await apply(...history.map((e) => [e]));
    expect(await state()).toEqual(together);
  });
});
