import { z } from "zod";
import { IdParam } from "@mam/contracts/identity-api.ts";
import { ListMessagesQuery, type Message } from "@mam/contracts/messages-api.ts";
import { CursorParam, type PaginationOut } from "@mam/contracts/pagination.ts";
import type { Api } from "./api.ts";
import { messageLine } from "./format.ts";
import type { ToolOutcome } from "./tools.ts";

/*
 * The API has no search endpoint: the tool reads the inbox's message list, newest first, a
 * page at a time, and keeps the messages that contain every word asked. A call reads at most
 * `scanLimit` messages and says where it stopped, so an agent searches older mail by asking
 * again with that cursor instead of one call reading a whole mailbox.
 */

/** Messages per page read: the list carries whole bodies, so pages stay modest. */
const PAGE = 50;

export const SearchInput = z.object({
  inboxId: IdParam.describe("The inbox to search"),
  query: z.string().trim().min(1).max(200).describe("Words that must all appear (case-insensitive)"),
  direction: ListMessagesQuery.shape.direction,
  maxResults: z.number().int().min(1).max(100).default(20).describe("Stop reading once this many messages matched"),
  scanLimit: z.number().int().min(1).max(500).default(500).describe("Most messages read by this call"),
  cursor: CursorParam.optional().describe("The previous search's nextCursor: go on with older messages"),
});

type MessageT = z.infer<typeof Message>;

/** What a match is listed with; get_message reads the whole message. */
function summary(m: MessageT) {
  return {
    id: m.id,
    threadId: m.threadId,
    direction: m.direction,
    from: m.from,
    to: m.to,
    subject: m.subject,
    preview: m.preview,
    receivedAt: m.receivedAt,
    isRead: m.isRead,
    isStarred: m.isStarred,
    isArchived: m.isArchived,
  };
}

/** The text a message is searched in. Tags are dropped from HTML so that markup does not match; entities are left as they are. */
function searchable(m: MessageT): string {
  const body = m.plainBody ?? m.htmlBody?.replace(/<[^>]*>/g, " ") ?? "";
  return [m.subject, m.from, m.to, ...m.cc, ...m.attachments.map((a) => a.filename), body].join("\n").toLowerCase();
}

export async function searchMessages(a: z.output<typeof SearchInput>, api: Api): Promise<ToolOutcome> {
  const words = a.query.toLowerCase().split(/\s+/).filter(Boolean);
  const matches: ReturnType<typeof summary>[] = [];
  let scanned = 0;
  let cursor = a.cursor;
  let more = true;
  while (more && scanned < a.scanLimit && matches.length < a.maxResults) {
    const res = await api({
      method: "GET",
      route: "/inboxes/:inboxId/messages",
      params: { inboxId: a.inboxId },
      query: { limit: Math.min(PAGE, a.scanLimit - scanned), cursor, direction: a.direction },
    });
    if (!res.ok) return res;
    const page = res.body as { messages: MessageT[]; pagination: z.infer<typeof PaginationOut> };
    scanned += page.messages.length;
    for (const m of page.messages) {
      const hay = searchable(m);
      if (words.every((w) => hay.includes(w))) matches.push(summary(m));
    }
    cursor = page.pagination.nextCursor ?? undefined;
    more = cursor !== undefined;
  }
  const nextCursor = more ? cursor! : null;
  const head = `${matches.length} of ${scanned} messages read match "${a.query}"`;
  const tail = nextCursor ? `Older messages not searched yet: call again with cursor "${nextCursor}".` : "No older messages left to search.";
  return {
    ok: true,
    body: { query: a.query, matches, scanned, nextCursor },
    text: [head, ...matches.map(messageLine), tail].join("\n"),
  };
}
