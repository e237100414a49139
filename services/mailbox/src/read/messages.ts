import { type AliasedSelectQueryBuilder, type Kysely, type RawBuilder, type Selectable, sql } from "kysely";
import { notFound, parseOrThrow } from "@mam/contracts/errors.ts";
import { IdParam } from "@mam/contracts/identity-api.ts";
import type { KnownMessage, MessagesState } from "../commands/message-state.ts";
import type { MailboxDb, MessagesTable } from "../db/schema.ts";
import { type DeliveryRecords, deliveryColumns, withDeliveries, withDeliveryRecords } from "../delivery/status.ts";
import { getBlobs } from "../store/blobs.ts";
import type { InboxRow } from "./inboxes.ts";

export type MessageRow = Selectable<MessagesTable>;

const iso = (d: Date | string) => new Date(d).toISOString();
const formatAddress = (address: string, name: string | null) => (name ? `"${name.replace(/["\\]/g, "")}" <${address}>` : address);

/** The public Message shape: the reference's fields, the sample client's, and what /v0 will need. */
export function messageView(r: MessageRow, bodies: Map<string, Buffer>) {
  const text = (h: string | null) => (h ? (bodies.get(h)?.toString("utf8") ?? null) : null);
  const at = iso(r.created_at);
  return {
    id: r.message_id,
    inboxId: r.inbox_id,
    threadId: r.thread_id,
    direction: r.direction,
    status: r.status,
    from: formatAddress(r.from_address, r.from_name),
    fromAddress: r.from_address,
    fromName: r.from_name,
    to: r.to_addresses.join(", "),
    toAddresses: r.to_addresses,
    cc: r.cc_addresses,
    bcc: r.direction === "outbound" ? r.bcc_addresses : [],
    replyTo: r.reply_to,
    subject: r.subject,
    preview: r.preview,
    plainBody: text(r.plain_hash),
    htmlBody: text(r.html_hash),
    isRead: r.is_read,
    isStarred: r.is_starred,
    isArchived: r.is_archived,
    labels: r.labels,
    messageIdHeader: r.message_id_header,
    inReplyTo: r.in_reply_to,
    references: r.references,
    attachments: r.attachments.map((a) => ({ id: a.id, filename: a.filename, contentType: a.contentType, sizeBytes: a.sizeBytes })),
    sizeBytes: r.raw_size,
    authentication: r.authentication ?? null,
    receivedAt: at,
    sentAt: r.direction === "outbound" ? at : null,
    createdAt: at,
    updatedAt: iso(r.updated_at),
  };
}
export type MessageView = ReturnType<typeof messageView>;

/** Views with each outgoing message's deliveries, per recipient (see delivery/status.ts). */
export async function viewsOf(db: Kysely<MailboxDb>, workspaceId: string, rows: MessageRow[]) {
  const hashes = rows.flatMap((r) => [r.plain_hash, r.html_hash]).filter((h): h is string => !!h);
  const bodies = await getBlobs(db, workspaceId, hashes);
  return withDeliveries(
    db,
    workspaceId,
    rows.map((r) => messageView(r, bodies)),
  );
}

const bodyOf = (hash: "m.plain_hash" | "m.html_hash", wanted: RawBuilder<boolean>) =>
  sql<Buffer | null>`case when ${wanted} then (select b.data from blobs b where b.workspace_id = m.workspace_id and b.hash = ${sql.ref(hash)}) end`;

/**
 * Message rows (a page, or a thread: a subquery aliased `m` with every column of messages, in
 * `order` of created_at and message_id) with what their views need beside, read by index for
 * each row in the same statement: the bodies and an outgoing message's delivery records. A
 * page read one row past its end (to tell whether another follows) numbers its rows `rn`
 * and gives `served`, the last number it serves: the row past it comes without them.
 */
export function withDetails<O extends MessageRow>(db: Kysely<MailboxDb>, rows: AliasedSelectQueryBuilder<O, "m">, order: "asc" | "desc", served?: number) {
  const wanted = served === undefined ? sql<boolean>`true` : sql<boolean>`m.rn <= ${served}`;
  return db
    .selectFrom(rows)
    .selectAll("m")
    .select([bodyOf("m.plain_hash", wanted).as("plain_body"), bodyOf("m.html_hash", wanted).as("html_body"), ...deliveryColumns(wanted)])
    .orderBy("m.created_at", order)
    .orderBy("m.message_id", order);
}
type DetailedRow = MessageRow & { plain_body: Buffer | null; html_body: Buffer | null } & { [K in keyof DeliveryRecords]: DeliveryRecords[K] | null };

/** The view of a row of withDetails. */
export function detailedView(r: DetailedRow) {
  const bodies = new Map<string, Buffer>();
  if (r.plain_hash && r.plain_body) bodies.set(r.plain_hash, r.plain_body);
  if (r.html_hash && r.html_body) bodies.set(r.html_hash, r.html_body);
  return withDeliveryRecords(messageView(r, bodies), { outcomes: r.outcomes ?? [], deferred: r.deferred ?? [] });
}

/** A live message of this inbox; one of another inbox is as missing as one that never was. */
export async function messageOfInbox(db: Kysely<MailboxDb>, inbox: InboxRow, rawId: unknown): Promise<MessageRow> {
  const id = parseOrThrow(IdParam, rawId, "message id");
  const r = await db
    .selectFrom("messages")
    .selectAll()
    .where("workspace_id", "=", inbox.workspace_id)
    .where("message_id", "=", id)
    .where("inbox_id", "=", inbox.inbox_id)
    .where("deleted_at", "is", null)
    .executeTakeFirst();
  if (!r) throw notFound("Message");
  return r;
}

/** The columns a decision about a message reads (see commands/message-state.ts). */
export const DECISION_COLUMNS = ["message_id", "inbox_id", "thread_id", "direction", "message_id_header", "status", "deleted_at", "version"] as const;
type DecisionRow = Pick<MessageRow, (typeof DECISION_COLUMNS)[number]>;

/** Rows as decisions see them, in the order given (the order they were stored, when it matters). */
export function messagesStateOf(rows: DecisionRow[]): MessagesState {
  const messages = new Map<string, KnownMessage>();
  for (const r of rows) {
    if (messages.has(r.message_id)) continue;
    messages.set(r.message_id, {
      inboxId: r.inbox_id,
      threadId: r.thread_id,
      direction: r.direction,
      messageIdHeader: r.message_id_header,
      status: r.status,
      deleted: r.deleted_at !== null,
      version: r.version,
    });
  }
  return { messages };
}

/** Messages of a workspace by id, deleted or not, of any inbox: the decision tells. */
export async function loadMessages(db: Kysely<MailboxDb>, workspaceId: string, ids: string[]): Promise<MessagesState> {
  if (!ids.length) return messagesStateOf([]);
  const rows = await db.selectFrom("messages").select(DECISION_COLUMNS).where("workspace_id", "=", workspaceId).where("message_id", "in", ids).execute();
  return messagesStateOf(rows);
}
