import { sql, type Kysely } from "kysely";
import { FEED_BODY_MAX_BYTES, type FeedMessage, type FeedThread } from "@mam/contracts/realtime-feed.ts";
import { rebuildingIn } from "@mam/service-kit/rebuild-guard.ts";
import type { MailboxDb } from "../db/schema.ts";
import { PROJECTION } from "../projections/mailbox-read-model.ts";
import { messageView } from "./messages.ts";

/**
 * The first `maxBytes` of UTF-8 text, cut before a character that would not fit whole.
 * `head` may hold one byte more than `maxBytes` (it tells where the cut falls).
 */
export function cutUtf8(head: Buffer, size: number, maxBytes: number): { bytes: Buffer; cut: boolean } {
  if (size <= maxBytes) return { bytes: head.subarray(0, size), cut: false };
  let end = maxBytes;
  // A continuation byte (10xxxxxx) at the cut means the character it belongs to started before it.
  while (end > 0 && (head[end]! & 0xc0) === 0x80) end--;
  return { bytes: head.subarray(0, end), cut: true };
}

/**
 * The messages found, and whether the read model was being rebuilt in the snapshot they were
 * read in (null when none was found: the statement had no row to tell it in).
 */
export interface FeedRead {
  found: { message: FeedMessage; thread: FeedThread }[];
  rebuilding: boolean | null;
}

/**
 * The messages of one workspace of one tenant as the feed shows them, each with its thread;
 * ids of other workspaces or tenants (or of none) are left out. Deleted messages are shown as they were: the feed
 * tells what happened, and its entries are rendered alike however late. It runs for every
 * message event, so it is one statement whatever the number of ids: each message with its
 * thread's subject and the head of each body (one byte past the cap, so the cut can be
 * placed, and the body's whole size), never a long body read whole.
 */
export async function feedMessages(
  db: Kysely<MailboxDb>,
  scope: { tenantId: string; workspaceId: string },
  messageIds: string[],
  maxBytes = FEED_BODY_MAX_BYTES,
): Promise<FeedRead> {
  const ids = [...new Set(messageIds)];
  if (!ids.length) return { found: [], rebuilding: null };
  const head = (alias: "p" | "h") => sql<Buffer | null>`substring(${sql.ref(`${alias}.data`)} from 1 for ${maxBytes + 1})`;
  const rows = await db
    .selectFrom("messages as m")
    .leftJoin("threads as t", (j) => j.onRef("t.workspace_id", "=", "m.workspace_id").onRef("t.thread_id", "=", "m.thread_id"))
    .leftJoin("blobs as p", (j) => j.onRef("p.workspace_id", "=", "m.workspace_id").onRef("p.hash", "=", "m.plain_hash"))
    .leftJoin("blobs as h", (j) => j.onRef("h.workspace_id", "=", "m.workspace_id").onRef("h.hash", "=", "m.html_hash"))
    .selectAll("m")
    .select(["t.subject as thread_subject", "p.size as plain_size", "h.size as html_size", head("p").as("plain_head"), head("h").as("html_head")])
    .select(rebuildingIn(PROJECTION).as("rebuilding"))
    .where("m.workspace_id", "=", scope.workspaceId)
    .where("m.message_id", "in", ids)
    .where("m.tenant_id", "=", scope.tenantId)
    .execute();
  const found = rows.map(({ thread_subject, plain_size, html_size, plain_head, html_head, rebuilding: _, ...r }) => {
    let truncated = false;
    const bodies = new Map<string, Buffer>();
    for (const [hash, blob, size] of [
      [r.plain_hash, plain_head, plain_size],
      [r.html_hash, html_head, html_size],
    ] as const) {
      if (!hash || !blob || size === null) continue;
      const { bytes, cut } = cutUtf8(blob, Number(size), maxBytes);
      truncated ||= cut;
      bodies.set(hash, bytes);
    }
    // The API's own rendering of a message, so the feed and GET agree field for field.
    const v = messageView(r, bodies);
    const message: FeedMessage = {
      messageId: v.id,
      inboxId: v.inboxId,
      threadId: v.threadId,
      direction: v.direction,
      from: v.from,
      fromAddress: v.fromAddress,
      to: v.toAddresses,
      cc: v.cc,
      subject: v.subject,
      preview: v.preview,
      plainBody: v.plainBody,
      htmlBody: v.htmlBody,
      bodyTruncated: truncated,
      messageIdHeader: v.messageIdHeader,
      inReplyTo: v.inReplyTo,
      attachments: v.attachments,
      timestamp: v.createdAt,
    };
    return { message, thread: { threadId: r.thread_id, subject: thread_subject ?? r.subject } };
  });
  return { found, rebuilding: rows[0]?.rebuilding ?? null };
}
