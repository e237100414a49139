import { sql, type Kysely } from "kysely";
import { FEED_BODY_MAX_BYTES, type FeedMessage, type FeedThread } from "@mam/contracts/realtime-feed.ts";
import type { MailboxDb } from "../db/schema.ts";
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
 * The head of each blob (one byte past the cap, so the cut can be placed) and its whole
 * size: a long body is never read whole for the feed.
 */
async function blobHeads(db: Kysely<MailboxDb>, workspaceId: string, hashes: string[], maxBytes: number) {
  const wanted = [...new Set(hashes)];
  if (!wanted.length) return new Map<string, { head: Buffer; size: number }>();
  const rows = await db
    .selectFrom("blobs")
    .select(["hash", "size", sql<Buffer>`substring(data from 1 for ${maxBytes + 1})`.as("head")])
    .where("workspace_id", "=", workspaceId)
    .where("hash", "in", wanted)
    .execute();
  return new Map(rows.map((r) => [r.hash, { head: r.head, size: Number(r.size) }]));
}

/**
 * The messages of one workspace as the feed shows them, each with its thread; ids of other
 * workspaces (or of none) are left out. Deleted messages are shown as they were: the feed
 * tells what happened, and its entries are rendered alike however late. Three queries,
 * whatever the number of ids: the messages, their bodies' heads, their threads.
 */
export async function feedMessages(
  db: Kysely<MailboxDb>,
  workspaceId: string,
  messageIds: string[],
  maxBytes = FEED_BODY_MAX_BYTES,
): Promise<{ message: FeedMessage; thread: FeedThread }[]> {
  const ids = [...new Set(messageIds)];
  if (!ids.length) return [];
  const rows = await db.selectFrom("messages").selectAll().where("workspace_id", "=", workspaceId).where("message_id", "in", ids).execute();
  if (!rows.length) return [];
  const hashes = rows.flatMap((r) => [r.plain_hash, r.html_hash]).filter((h): h is string => !!h);
  const threadIds = [...new Set(rows.map((r) => r.thread_id))];
  const [heads, threads] = await Promise.all([
    blobHeads(db, workspaceId, hashes, maxBytes),
    db.selectFrom("threads").select(["thread_id", "subject"]).where("workspace_id", "=", workspaceId).where("thread_id", "in", threadIds).execute(),
  ]);
  const subjects = new Map(threads.map((t) => [t.thread_id, t.subject]));
  return rows.map((r) => {
    let truncated = false;
    const bodies = new Map<string, Buffer>();
    for (const h of [r.plain_hash, r.html_hash]) {
      const blob = h ? heads.get(h) : undefined;
      if (!h || !blob) continue;
      const { bytes, cut } = cutUtf8(blob.head, blob.size, maxBytes);
      truncated ||= cut;
      bodies.set(h, bytes);
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
    return { message, thread: { threadId: r.thread_id, subject: subjects.get(r.thread_id) ?? r.subject } };
  });
}
