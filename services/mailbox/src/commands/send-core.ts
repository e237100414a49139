import type { Insertable, Kysely } from "kysely";
import type { BatchedWrites, RowsWriter } from "@mam/service-kit/batched-writes.ts";
import { AppError } from "@mam/contracts/errors.ts";
import { MAX_ATTACHMENT_BYTES } from "@mam/contracts/messages-api.ts";
import type { AttachmentRef } from "@mam/contracts/message-events.ts";
import { perContext, type MailboxContext } from "../context.ts";
import { dkimFor } from "./dkim-keys.ts";
import type { IdempotencyKeysTable, MailboxDb } from "../db/schema.ts";
import { compose, previewOf } from "../mime/compose.ts";
import type { InboxRow, SendingInbox } from "../read/inboxes.ts";
import { derivedId } from "../delivery/ids.ts";
import { loadDraft } from "../read/drafts.ts";
import { BlobWrites, sha256 } from "../store/blobs.ts";
import { countOutcome } from "../delivery/metrics.ts";
import { execute, groupCommit, type CommandMeta, type EventDraft } from "./execute.ts";
import { copiesKeyOf, decideLocalCopies, loadLocalCopies, localCopyReads, type LocalCopies } from "./local-copies.ts";
import { idempotencyReads } from "./send-idempotency.ts";
import {
  answerOf,
  decide,
  firstContacts,
  idempotencyRecordOf,
  initial,
  senderKey,
  type SendCommand,
  type SendResult,
  type SendState,
} from "./send-decision.ts";

/** The bodies to send: a message given neither is sent with an empty text part (only `to` and `subject` are required). */
export const bodiesOf = (plain: string | null | undefined, html: string | null | undefined) => ({
  text: plain ?? (html == null ? "" : undefined),
  html: html ?? undefined,
});

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
  /** Addresses of the conversation a reply continues: the check passes over them. */
  inConversation?: string[];
  inReplyTo: string | null;
  references: string[];
  /** The thread to continue; a new one when null. */
  threadId: string | null;
}

export function decodeAttachments(list: { filename: string; contentType: string; content: string }[] | undefined) {
  const out = (list ?? []).map((a) => ({ filename: a.filename, contentType: a.contentType.toLowerCase(), content: Buffer.from(a.content, "base64") }));
  const total = out.reduce((n, a) => n + a.content.length, 0);
  if (total > MAX_ATTACHMENT_BYTES) throw new AppError("PAYLOAD_TOO_LARGE", `Attachments exceed ${MAX_ATTACHMENT_BYTES} bytes`);
  return out;
}

/** Of these addresses, those that have written to the inbox. */
async function knownSendersOf(tx: Kysely<MailboxDb>, inbox: InboxRow, addresses: string[]): Promise<Set<string>> {
  const rows = await tx
    .selectFrom("messages")
    .select("from_address")
    .distinct()
    .where("workspace_id", "=", inbox.workspace_id)
    .where("inbox_id", "=", inbox.inbox_id)
    .where("direction", "=", "inbound")
    .where("from_address", "in", addresses)
    .execute();
  return new Set(rows.map((r) => senderKey(inbox.inbox_id, r.from_address)));
}

/** A send's state, and the copies it files itself when it goes (see LocalCopies). */
interface SendAndCopies {
  send: SendState;
  local?: LocalCopies;
}

/** What a send is decided against: the key's record, which recipients wrote before, the draft it deletes. */
async function loadSend(ctx: MailboxContext, tx: Kysely<MailboxDb>, inbox: InboxRow, c: SendCommand): Promise<SendState> {
  if (c.idempotency) {
    const seen = await idempotencyOf(ctx).of(tx, inbox.tenant_id, { workspaceId: inbox.workspace_id, inboxId: inbox.inbox_id, key: c.idempotency.key });
    // A retry is answered from its record alone.
    if (seen) return { ...initial(), idempotency: seen };
  }
  const asked = firstContacts(c);
  return {
    idempotency: null,
    knownSenders: asked.length ? await knownSendersOf(tx, inbox, asked) : new Set(),
    drafts: c.draft ? (await loadDraft(tx, inbox.workspace_id, c.draft.draftId)).drafts : new Map(),
  };
}

/** The idempotency records of a batch of sends, one statement (sends with the same key never share a batch: see oneAtATime). */
const insertIdempotencyKeys: RowsWriter<MailboxDb, Insertable<IdempotencyKeysTable>> = async (tx, rows) => {
  await tx.insertInto("idempotency_keys").values(rows).execute();
};

const idempotencyOf = perContext(() => idempotencyReads());
const copyReadsOf = perContext(() => localCopyReads());
const blobWritesOf = perContext((ctx) => new BlobWrites(ctx.db));
const sendsOf = perContext((ctx) => groupCommit(ctx));

const inFlight = perContext(() => new Map<string, Promise<void>>());
const settled = () => undefined;

/**
 * Sends with the same Idempotency-Key go one after the other, so the second finds the
 * first's record. In one batch both would be decided against what was committed before it
 * and both send; their records would then collide and fail the whole batch, every send of
 * it tried again alone. (In other processes, the tenant's lock puts their transactions one
 * after the other already.)
 */
function oneAtATime<T>(ctx: MailboxContext, key: string, run: () => Promise<T>): Promise<T> {
  const waiting = inFlight(ctx);
  const mine = (waiting.get(key) ?? Promise.resolve()).then(run);
  const done = mine.then(settled, settled);
  waiting.set(key, done);
  void done.then(() => waiting.get(key) === done && waiting.delete(key));
  return mine;
}

/** JSON with every object's keys in order: one text for one value, however its keys were written. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === "object" && !Array.isArray(x) && !Buffer.isBuffer(x)
      ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );
}

export interface SendOptions {
  /**
   * With an Idempotency-Key, a retried request gets the first answer and sends nothing again.
   * `request` is the request as parsed (so the same request written another way is the same),
   * `asSent` as the client wrote it: what earlier releases compared, still taken for their keys.
   */
  idempotency?: { key: string; request: unknown; asSent: unknown };
  /** The draft deleted by sending it, as it was read. */
  draft?: { draftId: string; version: number };
}

/**
 * Sends one message from an inbox: builds and signs it, stores its bytes once, records
 * MessageSent. Delivery (local or through the relay) follows from that event.
 */
export async function sendFromInbox(
  ctx: MailboxContext,
  inbox: SendingInbox,
  spec: OutgoingSpec,
  meta: CommandMeta,
  options: SendOptions = {},
): Promise<SendResult> {
  const recipients = [...new Set([...spec.to, ...spec.cc, ...spec.bcc])];
  if (!recipients.length) throw new AppError("VALIDATION_ERROR", "At least one recipient is required", [{ path: "to", message: "required" }]);
  if (recipients.length > 50) throw new AppError("VALIDATION_ERROR", "At most 50 recipients per message", [{ path: "to", message: "too many" }]);
  const { idempotency, draft } = options;
  const messageId = ctx.newId();
  const threadId = spec.threadId ?? ctx.newId();
  // Composing and signing is CPU work: done before taking the tenant's lock, not under it.
  const fromAddress = inbox.from_address;
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
  const ws = inbox.workspace_id;
  const at = ctx.clock();
  const plain = spec.text !== undefined ? Buffer.from(spec.text) : null;
  const html = spec.html !== undefined ? Buffer.from(spec.html) : null;
  const parts = [raw, plain, html, ...spec.attachments.map((a) => a.content)].filter((b): b is Buffer => b !== null);
  // One statement for all of them, and for those of the sends storing theirs meanwhile.
  await blobWritesOf(ctx).put(
    parts.map((data) => ({ workspaceId: ws, data })),
    at,
  );
  const stored = { raw: sha256(raw), plain: plain && sha256(plain), html: html && sha256(html) };
  const attachments: AttachmentRef[] = spec.attachments.map((a) => ({
    id: ctx.newId(),
    filename: a.filename,
    contentType: a.contentType,
    sizeBytes: a.content.length,
    hash: sha256(a.content),
  }));

  const command: SendCommand = {
    owner: { tenantId: inbox.tenant_id, workspaceId: ws },
    facts: {
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
    },
    eventId: derivedId("event", messageId, "MessageSent"),
    recipients,
    firstContactCheck: spec.firstContactCheck,
    inConversation: spec.inConversation?.map((a) => a.toLowerCase()),
    idempotency: idempotency
      ? { key: idempotency.key, requestHash: sha256(canonicalJson(idempotency.request)), earlierHash: sha256(JSON.stringify(idempotency.asSent)) }
      : null,
    draft: draft ?? null,
  };
  let copies: { delivered: number; filed: { inboxId: string; messageId: string }[] } | undefined;
  const steps = {
    load: async (tx: Kysely<MailboxDb>): Promise<SendAndCopies> => {
      const send = await loadSend(ctx, tx, inbox, command);
      // A retry answered from its record sends nothing, and files nothing.
      return send.idempotency ? { send } : { send, local: await loadLocalCopies(tx, copyReadsOf(ctx), inbox, command) };
    },
    decide: ({ send, local }: SendAndCopies) => {
      const events = decide(command, send);
      return local && events.some((d) => d.event.type === "MessageSent") ? [...events, ...decideLocalCopies(local)] : events;
    },
    answer: async (_tx: Kysely<MailboxDb>, { send: state, local }: SendAndCopies, events: EventDraft[], writes: BatchedWrites<MailboxDb>) => {
      copies = local && events.some((d) => d.event.type === "MessageDelivered") ? copiesOf(local, events) : undefined;
      // Recorded with the events, in their transaction: a retry finds it once they are committed.
      const record = idempotencyRecordOf(command, state);
      if (record && idempotency) {
        writes.add(insertIdempotencyKeys, {
          workspace_id: ws,
          inbox_id: inbox.inbox_id,
          key: idempotency.key,
          request_hash: record.requestHash,
          canonical_hash: record.canonicalHash ?? null,
          response: JSON.stringify(record.response),
          created_at: at,
        });
      }
      return answerOf(command, state);
    },
  };

  // A send decides nothing another send's events could change, so the sends of a tenant are
  // group-committed; one that deletes a draft goes alone (two sends of one draft in a batch
  // would both find it live).
  const sent = await copyReadsOf(ctx).during(inbox.tenant_id, copiesKeyOf(inbox, command), () => {
    if (draft) return execute(ctx, inbox.tenant_id, meta, steps);
    if (!idempotency) return sendsOf(ctx).run(inbox.tenant_id, meta, steps);
    const ref = { workspaceId: ws, inboxId: inbox.inbox_id, key: idempotency.key };
    return oneAtATime(ctx, `${ws} ${inbox.inbox_id} ${idempotency.key}`, () =>
      idempotencyOf(ctx).during(inbox.tenant_id, ref, () => sendsOf(ctx).run(inbox.tenant_id, meta, steps)),
    );
  });
  if (copies) {
    countOutcome("delivered", copies.delivered);
    // As the delivery worker says it of the copies it files. (Every copy is filed: they are
    // for inboxes that take mail, read under the tenant's lock, see loadLocalCopies.)
    if (ctx.logger.isLevelEnabled("debug"))
      for (const c of copies.filed) ctx.logger.debug({ messageId, inboxId: c.inboxId, filedMessageId: c.messageId, result: "filed" }, "filed");
  }
  return sent;
}

/** What a send's own copies came to: the recipients delivered, the copies filed. */
function copiesOf(local: LocalCopies, events: EventDraft[]) {
  const filed = events.flatMap((d) => (d.event.type === "MessageReceived" ? [{ inboxId: d.event.data.inboxId, messageId: d.event.data.messageId }] : []));
  return { delivered: local.record.outcome.data.recipients.length, filed };
}
