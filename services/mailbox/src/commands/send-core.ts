import type { Kysely } from "kysely";
import { AppError } from "@mam/contracts/errors.ts";
import { MAX_ATTACHMENT_BYTES } from "@mam/contracts/messages-api.ts";
import type { AttachmentRef } from "@mam/contracts/message-events.ts";
import type { MailboxContext } from "../context.ts";
import type { MailboxDb } from "../db/schema.ts";
import { compose, previewOf } from "../mime/compose.ts";
import type { InboxRow } from "../read/inboxes.ts";
import { derivedId } from "../delivery/ids.ts";
import { putBlob, sha256 } from "../store/blobs.ts";
import { execute, groupCommit, type CommandMeta, type EventDraft } from "./execute.ts";

export interface OutgoingSpec {
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  text?: string;
  html?: string;
  replyTo?: string | null;
  attachments: { filename: string; contentType: string; content: Buffer }[];
  /** Check that every recipient has written to this inbox before (the first-contact safeguard). */
  firstContactCheck: boolean;
  inReplyTo: string | null;
  references: string[];
  /** The thread to continue; a new one when null. */
  threadId: string | null;
}

export interface SendResult {
  id: string;
  threadId: string;
  status: "sent";
  messageId: string;
}

export function decodeAttachments(list: { filename: string; contentType: string; content: string }[] | undefined) {
  const out = (list ?? []).map((a) => ({ filename: a.filename, contentType: a.contentType.toLowerCase(), content: Buffer.from(a.content, "base64") }));
  const total = out.reduce((n, a) => n + a.content.length, 0);
  if (total > MAX_ATTACHMENT_BYTES) throw new AppError("PAYLOAD_TOO_LARGE", `Attachments exceed ${MAX_ATTACHMENT_BYTES} bytes`);
  return out;
}

async function primaryAddress(tx: Kysely<MailboxDb>, inbox: InboxRow): Promise<string> {
  const r = await tx
    .selectFrom("inbox_addresses")
    .select("address")
    .where("workspace_id", "=", inbox.workspace_id)
    .where("inbox_id", "=", inbox.inbox_id)
    .where("is_primary", "=", true)
    .executeTakeFirst();
  return r?.address ?? inbox.canonical_email;
}

/** The key that signs mail from this domain: the platform's, or the workspace's custom domain's. */
async function dkimFor(ctx: MailboxContext, tx: Kysely<MailboxDb>, inbox: InboxRow, domain: string) {
  let ref = "platform";
  if (domain !== ctx.cfg.MAIL_DOMAIN) {
    const d = await tx
      .selectFrom("domains")
      .select("domain_id")
      .where("workspace_id", "=", inbox.workspace_id)
      .where("domain", "=", domain)
      .where("deleted_at", "is", null)
      .executeTakeFirst();
    if (!d) return undefined;
    ref = d.domain_id;
  }
  const key = await tx.selectFrom("dkim_keys").selectAll().where("key_ref", "=", ref).executeTakeFirst();
  return key ? { domainName: domain, keySelector: key.selector, privateKey: key.private_key_pem } : undefined;
}

async function assertKnownRecipients(tx: Kysely<MailboxDb>, inbox: InboxRow, recipients: string[]) {
  const rows = await tx
    .selectFrom("messages")
    .select("from_address")
    .distinct()
    .where("workspace_id", "=", inbox.workspace_id)
    .where("inbox_id", "=", inbox.inbox_id)
    .where("direction", "=", "inbound")
    .where("from_address", "in", recipients)
    .execute();
  const known = new Set(rows.map((r) => r.from_address));
  const unknown = recipients.filter((r) => !known.has(r));
  if (unknown.length) {
    throw new AppError(
      "FORBIDDEN",
      `First contact: ${unknown.join(", ")} never wrote to this inbox. Pass "verified": true once you have checked the address.`,
    );
  }
}

const batchers = new WeakMap<MailboxContext, ReturnType<typeof groupCommit>>();
const sendsOf = (ctx: MailboxContext) => {
  let b = batchers.get(ctx);
  if (!b) batchers.set(ctx, (b = groupCommit(ctx)));
  return b;
};

/**
 * Sends one message from an inbox: builds and signs it, stores its bytes once, records
 * MessageSent. Delivery (local or through the relay) follows from that event. With an
 * Idempotency-Key, a retried request gets the first answer and sends nothing again.
 */
export async function sendFromInbox(
  ctx: MailboxContext,
  inbox: InboxRow,
  spec: OutgoingSpec,
  meta: CommandMeta,
  idempotency?: { key: string; request: unknown },
  /** Events recorded in the same step as the send (a draft deleted by sending it). */
  alongside?: (tx: Kysely<MailboxDb>, messageId: string) => Promise<EventDraft[]>,
): Promise<SendResult> {
  const recipients = [...new Set([...spec.to, ...spec.cc, ...spec.bcc])];
  if (!recipients.length) throw new AppError("VALIDATION_ERROR", "At least one recipient is required", [{ path: "to", message: "required" }]);
  if (recipients.length > 50) throw new AppError("VALIDATION_ERROR", "At most 50 recipients per message", [{ path: "to", message: "too many" }]);
  const requestHash = idempotency ? sha256(JSON.stringify(idempotency.request)) : "";
  const messageId = ctx.newId();
  const threadId = spec.threadId ?? ctx.newId();
  // Composing and signing is CPU work: done before taking the tenant's lock, not under it.
  const fromAddress = await primaryAddress(ctx.db, inbox);
  const domain = fromAddress.split("@")[1]!;
  const header = `<${messageId}@${domain}>`;
  const raw = await compose({
    from: { address: fromAddress, name: inbox.display_name },
    to: spec.to,
    cc: spec.cc,
    subject: spec.subject,
    text: spec.text,
    html: spec.html,
    replyTo: spec.replyTo,
    attachments: spec.attachments,
    messageIdHeader: header,
    inReplyTo: spec.inReplyTo,
    references: spec.references,
    date: ctx.clock(),
    dkim: await dkimFor(ctx, ctx.db, inbox, domain),
  });

  // Bytes are content-addressed and idempotent: stored before the lock is taken.
  const ws0 = inbox.workspace_id;
  const at = ctx.clock();
  const stored = {
    raw: await putBlob(ctx.db, ws0, raw, at),
    plain: spec.text !== undefined ? await putBlob(ctx.db, ws0, Buffer.from(spec.text), at) : null,
    html: spec.html !== undefined ? await putBlob(ctx.db, ws0, Buffer.from(spec.html), at) : null,
  };
  const attachments: AttachmentRef[] = [];
  for (const a of spec.attachments) {
    attachments.push({ id: ctx.newId(), filename: a.filename, contentType: a.contentType, sizeBytes: a.content.length, hash: await putBlob(ctx.db, ws0, a.content, at) });
  }

  const decision = async (tx: Kysely<MailboxDb>): Promise<{ events: EventDraft[]; result: SendResult }> => {
    if (idempotency) {
      const seen = await tx
        .selectFrom("idempotency_keys")
        .selectAll()
        .where("workspace_id", "=", inbox.workspace_id)
        .where("inbox_id", "=", inbox.inbox_id)
        .where("key", "=", idempotency.key)
        .executeTakeFirst();
      if (seen) {
        if (seen.request_hash !== requestHash) throw new AppError("CONFLICT", "This Idempotency-Key was used for a different request");
        return { events: [], result: seen.response as SendResult };
      }
    }
    if (spec.firstContactCheck) await assertKnownRecipients(tx, inbox, recipients);
    // Nothing is written above this line: a refusal leaves the transaction untouched.
    const now = ctx.clock();
    const ws = inbox.workspace_id;
    const facts = {
      messageId,
      inboxId: inbox.inbox_id,
      threadId,
      from: { address: fromAddress, name: inbox.display_name },
      to: spec.to,
      cc: spec.cc,
      bcc: spec.bcc,
      replyTo: spec.replyTo ?? null,
      subject: spec.subject,
      messageIdHeader: header,
      inReplyTo: spec.inReplyTo,
      references: spec.references,
      rawHash: stored.raw,
      rawSize: raw.length,
      plainHash: stored.plain,
      htmlHash: stored.html,
      preview: previewOf(spec.text, spec.html),
      attachments,
    };
    const result: SendResult = { id: messageId, threadId, status: "sent", messageId: header };
    if (idempotency) {
      await tx
        .insertInto("idempotency_keys")
        .values({ workspace_id: ws, inbox_id: inbox.inbox_id, key: idempotency.key, request_hash: requestHash, response: JSON.stringify(result), created_at: now })
        .execute();
    }
    const also = alongside ? await alongside(tx, messageId) : [];
    const events: EventDraft[] = [
      {
        event: { type: "MessageSent", schemaVersion: 1, data: facts },
        // Deciding this send again (a retry after a failed commit) appends the same event.
        eventId: derivedId("event", messageId, "MessageSent"),
        tenantId: inbox.tenant_id,
        workspaceId: ws,
        aggregateId: messageId,
        aggregateVersion: 1,
      },
      ...also,
    ];
    return { events, result };
  };

  // A send decides nothing another send's events could change, so the sends of a tenant are
  // group-committed; one with other events alongside (a draft it deletes) goes alone.
  if (!alongside) return sendsOf(ctx).run(inbox.tenant_id, meta, decision);
  let decided: SendResult | undefined;
  return execute(
    ctx,
    inbox.tenant_id,
    meta,
    async (tx) => {
      const d = await decision(tx);
      decided = d.result;
      return d.events;
    },
    async () => decided!,
  );
}
