import { McpServer, type ToolCallback } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { CallToolResult, ServerNotification, ServerRequest, ToolAnnotations } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import type { ErrorBody } from "@mam/contracts/errors.ts";
import { IdParam } from "@mam/contracts/identity-api.ts";
import { ListInboxesQuery } from "@mam/contracts/mailbox-api.ts";
import { DraftInput, ForwardBody, ListDraftsQuery, ListMessagesQuery, MailboxViewQuery, ReplyBody, SendBody } from "@mam/contracts/messages-api.ts";
import type { Api, ApiRequest } from "./api.ts";
import * as text from "./format.ts";
import { SearchInput, searchMessages } from "./search.ts";

export type ToolExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** What a tool does with its parsed arguments: one API call and how to read its answer, or its own steps. */
export type ToolOutcome = { ok: true; body: Record<string, unknown>; text: string } | { ok: false; error: ErrorBody };

interface ToolSpec<S extends z.ZodObject> {
  title: string;
  description: string;
  input: S;
  annotations: ToolAnnotations;
  run: (args: z.output<S>, api: Api) => Promise<ToolOutcome>;
}

const READ: ToolAnnotations = { readOnlyHint: true, openWorldHint: false };
/** Sends mail: reaches people outside the platform, and cannot be taken back. */
const SEND: ToolAnnotations = { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true };
const WRITE: ToolAnnotations = { readOnlyHint: false, destructiveHint: false, openWorldHint: false };

const inboxId = IdParam.describe("The inbox's id (list_inboxes shows them)");
const messageId = IdParam.describe("The message's id");
const draftId = IdParam.describe("The draft's id");
const threadId = IdParam.describe("The thread's id");
const idempotencyKey = z.string().min(1).max(255).optional().describe("Retrying with the same key returns the first answer and sends nothing again");

/** One API call; its JSON answer is the structured content, `show` renders the text. */
function call<T>(api: Api, r: ApiRequest, show: (body: T) => string): Promise<ToolOutcome> {
  return api(r).then((res) => (res.ok ? { ok: true, body: res.body as Record<string, unknown>, text: show(res.body as T) } : res));
}

/**
 * The tools. Their inputs are the contracts' own schemas (the fields of the API's bodies and
 * queries, the ids as the gateway checks them), so an argument the API would refuse is
 * refused before any call, and what the tool sends is what the schema let through.
 */
export const tools = {
  list_inboxes: tool({
    title: "List inboxes",
    description: "The inboxes this key sees (an inbox key sees its own inbox only), with their ids and addresses.",
    input: ListInboxesQuery,
    annotations: READ,
    run: (q, api) => call(api, { method: "GET", route: "/inboxes", query: q }, text.inboxesText),
  }),
  list_messages: tool({
    title: "List messages",
    description: "An inbox's messages, newest first, with their bodies. Page with `cursor` (from the previous answer's pagination.nextCursor).",
    input: z.object({ inboxId, ...ListMessagesQuery.shape }),
    annotations: READ,
    run: ({ inboxId, ...q }, api) => call(api, { method: "GET", route: "/inboxes/:inboxId/messages", params: { inboxId }, query: q }, text.messagesText),
  }),
  get_message: tool({
    title: "Read a message",
    description: "One message with its headers, body, attachments and delivery status. Marks it read.",
    input: z.object({ inboxId, messageId }),
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    run: (p, api) => call(api, { method: "GET", route: "/inboxes/:inboxId/messages/:messageId", params: p }, text.messageText),
  }),
  search_messages: tool({
    title: "Search messages",
    description:
      "Finds an inbox's messages whose subject, sender, recipients, body or attachment names contain every word of `query` (case-insensitive). " +
      "Reads the inbox newest first, up to `scanLimit` messages per call; when `nextCursor` is not null, call again with it to search older mail.",
    input: SearchInput,
    annotations: READ,
    run: searchMessages,
  }),
  list_threads: tool({
    title: "List threads",
    description:
      "Conversations in a folder (inbox, sent, starred, archived, trash) across the inboxes this key sees, or of one inbox with `inboxId`, newest first, with their message and unread counts.",
    input: MailboxViewQuery.omit({ group: true }),
    annotations: READ,
    run: (q, api) => call(api, { method: "GET", route: "/messages", query: { ...q, group: "thread" } }, text.threadsText),
  }),
  get_thread: tool({
    title: "Read a thread",
    description: "A whole conversation, oldest message first, each with its body.",
    input: z.object({ inboxId, threadId }),
    annotations: READ,
    run: (p, api) => call(api, { method: "GET", route: "/inboxes/:inboxId/threads/:threadId", params: p }, text.threadText),
  }),
  send_message: tool({
    title: "Send a message",
    description:
      "Sends a new message (a new thread) from an inbox. A recipient who never wrote to the inbox is refused unless `verified` is true. Attachments are base64.",
    input: z.object({ inboxId, ...SendBody.shape, idempotencyKey }),
    annotations: SEND,
    run: ({ inboxId, idempotencyKey, ...body }, api) =>
      call(api, { method: "POST", route: "/inboxes/:inboxId/send", params: { inboxId }, body, idempotencyKey }, text.sentText),
  }),
  reply_to_message: tool({
    title: "Reply to a message",
    description: "Replies in the message's thread: to its sender, or with `replyAll` to everyone on it.",
    input: z.object({ inboxId, messageId, replyAll: z.boolean().default(false).describe("Reply to every recipient too"), ...ReplyBody.shape, idempotencyKey }),
    annotations: SEND,
    run: ({ inboxId, messageId, replyAll, idempotencyKey, ...body }, api) =>
      call(
        api,
        {
          method: "POST",
          route: replyAll ? "/inboxes/:inboxId/reply-all/:messageId" : "/inboxes/:inboxId/reply/:messageId",
          params: { inboxId, messageId },
          body,
          idempotencyKey,
        },
        text.sentText,
      ),
  }),
  forward_message: tool({
    title: "Forward a message",
    description: "Forwards a message, with its attachments, to new recipients (a new thread).",
    input: z.object({ inboxId, messageId, ...ForwardBody.shape, idempotencyKey }),
    annotations: SEND,
    run: ({ inboxId, messageId, idempotencyKey, ...body }, api) =>
      call(api, { method: "POST", route: "/inboxes/:inboxId/forward/:messageId", params: { inboxId, messageId }, body, idempotencyKey }, text.sentText),
  }),
  create_draft: tool({
    title: "Create a draft",
    description: "Saves a draft in an inbox; every field may come later (update_draft). With `replyToMessageId` it answers that message, in its thread.",
    input: z.object({ inboxId, ...DraftInput.shape }),
    annotations: WRITE,
    run: ({ inboxId, ...body }, api) => call(api, { method: "POST", route: "/inboxes/:inboxId/drafts", params: { inboxId }, body }, text.draftText),
  }),
  list_drafts: tool({
    title: "List drafts",
    description: "An inbox's drafts, newest first.",
    input: z.object({ inboxId, ...ListDraftsQuery.shape }),
    annotations: READ,
    run: ({ inboxId, ...q }, api) => call(api, { method: "GET", route: "/inboxes/:inboxId/drafts", params: { inboxId }, query: q }, text.draftsText),
  }),
  get_draft: tool({
    title: "Read a draft",
    description: "One draft with every field.",
    input: z.object({ inboxId, draftId }),
    annotations: READ,
    run: (p, api) => call(api, { method: "GET", route: "/inboxes/:inboxId/drafts/:draftId", params: p }, text.draftText),
  }),
  update_draft: tool({
    title: "Update a draft",
    description: "Changes the fields given; the others stay. null clears a body or replyToMessageId.",
    input: z.object({ inboxId, draftId, ...DraftInput.shape }),
    annotations: { ...WRITE, idempotentHint: true },
    run: ({ inboxId, draftId, ...body }, api) =>
      call(api, { method: "PATCH", route: "/inboxes/:inboxId/drafts/:draftId", params: { inboxId, draftId }, body }, text.draftText),
  }),
  send_draft: tool({
    title: "Send a draft",
    description: "Sends the draft (it needs a recipient) and deletes it.",
    input: z.object({ inboxId, draftId }),
    annotations: SEND,
    run: (p, api) => call(api, { method: "POST", route: "/inboxes/:inboxId/drafts/:draftId/send", params: p }, text.sentText),
  }),
  delete_draft: tool({
    title: "Delete a draft",
    description: "Deletes a draft without sending it.",
    input: z.object({ inboxId, draftId }),
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    run: (p, api) => call(api, { method: "DELETE", route: "/inboxes/:inboxId/drafts/:draftId", params: p }, () => `Draft ${p.draftId} deleted`),
  }),
};

/** Keeps each tool's `run` typed by its own input schema. */
function tool<S extends z.ZodObject>(spec: ToolSpec<S>): ToolSpec<S> {
  return spec;
}

export const SERVER_NAME = "myagentmail";
export const SERVER_VERSION = "0.1.0";

const INSTRUCTIONS =
  "Email for this API key: its inboxes, their messages, threads and drafts. Start with list_inboxes for the inbox ids every other tool takes. " +
  "Ids are UUIDs. Lists are pages: pass pagination.nextCursor back as `cursor` for the next one. " +
  "A failed call is a tool error whose text starts with the API's error code (NOT_FOUND, VALIDATION_ERROR, FORBIDDEN, ...).";

/**
 * An MCP server with the mail tools. `apiFor` gives the API to call for one request: a
 * fixed key's client over stdio, the authenticated caller's inside the gateway.
 */
export function createMailServer(apiFor: (extra: ToolExtra) => Api): McpServer {
  const server = new McpServer({ name: SERVER_NAME, version: SERVER_VERSION }, { capabilities: { tools: {} }, instructions: INSTRUCTIONS });
  for (const [name, spec] of Object.entries(tools) as [string, ToolSpec<z.ZodObject>][]) register(server, name, spec, apiFor);
  return server;
}

function register<S extends z.ZodObject>(server: McpServer, name: string, spec: ToolSpec<S>, apiFor: (extra: ToolExtra) => Api): void {
  const handler = (async (args: z.output<S>, extra: ToolExtra) => toResult(await spec.run(args, apiFor(extra)))) as ToolCallback<S>;
  server.registerTool(name, { title: spec.title, description: spec.description, inputSchema: spec.input, annotations: spec.annotations }, handler);
}

/** The API's answer as the structured content, or its `{ error, code }` as a tool error: never a thrown error, which would end the call badly. */
export function toResult(o: ToolOutcome): CallToolResult {
  if (o.ok) return { content: [{ type: "text", text: o.text }], structuredContent: o.body };
  return { content: [{ type: "text", text: text.errorText(o.error) }], structuredContent: { ...o.error }, isError: true };
}
