import type { RpcContext, RpcServer } from "@mam/bus/rpc.ts";
import { parseOrThrow } from "@mam/contracts/errors.ts";
import { InboxRef } from "@mam/contracts/mailbox-api.ts";
import { Rpc } from "@mam/contracts/subjects.ts";
import type { MailboxContext } from "../context.ts";
import { addAddress, removeAddress } from "../commands/addresses.ts";
import { createInbox } from "../commands/create-inbox.ts";
import { folderCounts, mailboxView } from "../commands/mailbox-view.ts";
import { createDraft, deleteDraft, getDraft, listDrafts, sendDraft, updateDraft } from "../commands/drafts.ts";
import { deleteMessage, getAttachment, getMessage, getThread, listAttachments, listMessages, patchMessage, rawMessage } from "../commands/messages.ts";
import { forward, reply, send } from "../commands/send.ts";
import { addDomain, getDomain, listDomains, removeDomain, verifyDomain } from "../commands/domains.ts";
import { platformDomain } from "../commands/platform-domain.ts";
import { directoryPage } from "../commands/directory.ts";
import type { CommandMeta } from "../commands/execute.ts";
import { deleteInbox, getInbox, listInboxes, updateInbox } from "../commands/inboxes.ts";
import { addEntry, createList, deleteList, getList, getLists, removeEntry, updateEntry, updateList } from "../commands/lists.ts";

const meta = (c: RpcContext): CommandMeta => ({ actor: { type: "key", id: c.claims.kid }, requestId: c.requestId });
const ok = (body: unknown) => ({ status: 200, body });

/** The mailbox's commands and queries, one subject each. */
export function registerMailboxRpc(server: RpcServer, ctx: MailboxContext, stream: string): void {
  const M = Rpc.mailbox;
  server.handle(M.inboxCreate, (body, c) => createInbox(ctx, c, body, meta(c)));
  server.handle(M.inboxList, async (body, c) => ok(await listInboxes(ctx, c.claims, body)));
  server.handle(M.inboxGet, async (body, c) => ok(await getInbox(ctx, c.claims, parseOrThrow(InboxRef, body).inboxId)));
  server.handle(M.inboxUpdate, async (body, c) => ok(await updateInbox(ctx, c.claims, body, meta(c))));
  server.handle(M.inboxDelete, async (body, c) => ok(await deleteInbox(ctx, c.claims, parseOrThrow(InboxRef, body).inboxId, meta(c))));
  server.handle(M.addressAdd, (body, c) => addAddress(ctx, c.claims, body, meta(c)));
  server.handle(M.addressRemove, async (body, c) => ok(await removeAddress(ctx, c.claims, body, meta(c))));
  server.handle(M.listCreate, (body, c) => createList(ctx, c.claims, body, meta(c)));
  server.handle(M.listList, async (body, c) => ok(await getLists(ctx, c.claims, body)));
  server.handle(M.listGet, async (body, c) => ok(await getList(ctx, c.claims, body)));
  server.handle(M.listUpdate, async (body, c) => ok(await updateList(ctx, c.claims, body, meta(c))));
  server.handle(M.listDelete, async (body, c) => ok(await deleteList(ctx, c.claims, body, meta(c))));
  server.handle(M.entryAdd, (body, c) => addEntry(ctx, c.claims, body, meta(c)));
  server.handle(M.entryUpdate, async (body, c) => ok(await updateEntry(ctx, c.claims, body, meta(c))));
  server.handle(M.domainAdd, (body, c) => addDomain(ctx, c, body, meta(c)));
  server.handle(M.domainList, async (_body, c) => ok(await listDomains(ctx, c.claims)));
  server.handle(M.domainGet, async (body, c) => ok(await getDomain(ctx, c.claims, body)));
  server.handle(M.domainVerify, async (body, c) => ok(await verifyDomain(ctx, c.claims, body, meta(c))));
  server.handle(M.domainRemove, async (body, c) => ok(await removeDomain(ctx, c.claims, body, meta(c))));
  // No scope: it is the platform's, not a workspace's (every address is in the event stream anyway).
  server.handlePublic(M.directoryPage, async (body) => ok(await directoryPage(ctx, stream, body)));
  server.handle(M.platformDomainGet, async (_body, c) => ok(await platformDomain(ctx, c.claims, false)));
  server.handle(M.platformDomainVerify, async (_body, c) => ok(await platformDomain(ctx, c.claims, true)));
  server.handle(M.messageSend, async (body, c) => ok(await send(ctx, c.claims, body, meta(c))));
  server.handle(M.messageReply, async (body, c) => ok(await reply(ctx, c.claims, body, meta(c), false)));
  server.handle(M.messageReplyAll, async (body, c) => ok(await reply(ctx, c.claims, body, meta(c), true)));
  server.handle(M.messageForward, async (body, c) => ok(await forward(ctx, c.claims, body, meta(c))));
  server.handle(M.messageList, async (body, c) => ok(await listMessages(ctx, c.claims, body)));
  server.handle(M.messageGet, async (body, c) => ok(await getMessage(ctx, c.claims, body, meta(c))));
  server.handle(M.messagePatch, async (body, c) => ok(await patchMessage(ctx, c.claims, body, meta(c))));
  server.handle(M.messageDelete, async (body, c) => ok(await deleteMessage(ctx, c.claims, body, meta(c))));
  server.handle(M.messageRaw, async (body, c) => ok(await rawMessage(ctx, c.claims, body)));
  server.handle(M.attachmentList, async (body, c) => ok(await listAttachments(ctx, c.claims, body)));
  server.handle(M.attachmentGet, async (body, c) => ok(await getAttachment(ctx, c.claims, body)));
  server.handle(M.threadGet, async (body, c) => ok(await getThread(ctx, c.claims, body)));
  server.handle(M.draftCreate, (body, c) => createDraft(ctx, c.claims, body, meta(c)));
  server.handle(M.draftList, async (body, c) => ok(await listDrafts(ctx, c.claims, body)));
  server.handle(M.draftGet, async (body, c) => ok(await getDraft(ctx, c.claims, body)));
  server.handle(M.draftUpdate, (body, c) => updateDraft(ctx, c.claims, body, meta(c)));
  server.handle(M.draftDelete, async (body, c) => ok(await deleteDraft(ctx, c.claims, body, meta(c))));
  server.handle(M.draftSend, async (body, c) => ok(await sendDraft(ctx, c.claims, body, meta(c))));
  server.handle(M.mailboxView, async (body, c) => ok(await mailboxView(ctx, c.claims, body)));
  server.handle(M.folderCounts, async (body, c) => ok(await folderCounts(ctx, c.claims, body)));
  server.handle(M.entryRemove, async (body, c) => ok(await removeEntry(ctx, c.claims, body, meta(c))));
}
