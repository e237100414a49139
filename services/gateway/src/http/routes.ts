import type { Request } from "express";
import { Rpc } from "@mam/contracts/subjects.ts";

export interface ForwardRoute {
  method: "get" | "post" | "patch" | "delete";
  path: string;
  subject: string;
  /** What the service receives: the body and path parameters it needs, nothing else. */
  toRpc: (req: Request) => unknown;
}

const body = (req: Request) => req.body ?? {};
const param = (req: Request, name: string) => String(req.params[name] ?? "");
/** Query parameters as plain strings (repeated ones: the first). */
const query = (req: Request) =>
  Object.fromEntries(Object.entries(req.query).map(([k, v]) => [k, Array.isArray(v) ? String(v[0]) : String(v ?? "")]));
const inbox = (r: Request) => ({ inboxId: param(r, "id") });
const list = (r: Request) => ({ inboxId: param(r, "id"), listId: param(r, "lid") });
const entry = (r: Request) => ({ ...list(r), entryId: param(r, "eid") });
const withBody = (ref: (r: Request) => object) => (r: Request) => ({ ...ref(r), body: body(r) });
const message = (r: Request) => ({ inboxId: param(r, "id"), messageId: param(r, "mid") });
/** Sends carry the Idempotency-Key header, if any, to the mailbox. */
const sending = (ref: (r: Request) => object) => (r: Request) => {
  const key = r.get("idempotency-key");
  return { ...ref(r), body: body(r), ...(key ? { idempotencyKey: key } : {}) };
};

/** Public `/v1` routes that are forwarded, as they are, to the service owning them. */
export const forwardRoutes: ForwardRoute[] = [
  { method: "post", path: "/tenants", subject: Rpc.identity.tenantCreate, toRpc: body },
  { method: "post", path: "/workspaces", subject: Rpc.identity.workspaceCreate, toRpc: body },
  { method: "get", path: "/workspaces", subject: Rpc.identity.workspaceList, toRpc: () => ({}) },
  { method: "get", path: "/workspaces/:id", subject: Rpc.identity.workspaceGet, toRpc: (r) => ({ workspaceId: param(r, "id") }) },
  { method: "delete", path: "/workspaces/:id", subject: Rpc.identity.workspaceDelete, toRpc: (r) => ({ workspaceId: param(r, "id") }) },
  {
    method: "post",
    path: "/workspaces/:id/keys",
    subject: Rpc.identity.keyIssue,
    toRpc: (r) => ({ workspaceId: param(r, "id"), body: body(r) }),
  },
  { method: "get", path: "/workspaces/:id/keys", subject: Rpc.identity.keyList, toRpc: (r) => ({ workspaceId: param(r, "id") }) },
  {
    method: "delete",
    path: "/workspaces/:id/keys/:keyId",
    subject: Rpc.identity.keyRevoke,
    toRpc: (r) => ({ workspaceId: param(r, "id"), keyId: param(r, "keyId") }),
  },
  { method: "post", path: "/inboxes", subject: Rpc.mailbox.inboxCreate, toRpc: (r) => ({ body: body(r), query: query(r) }) },
  { method: "get", path: "/inboxes", subject: Rpc.mailbox.inboxList, toRpc: query },
  { method: "get", path: "/inboxes/:id", subject: Rpc.mailbox.inboxGet, toRpc: inbox },
  { method: "patch", path: "/inboxes/:id", subject: Rpc.mailbox.inboxUpdate, toRpc: (r) => ({ ...inbox(r), body: body(r) }) },
  { method: "delete", path: "/inboxes/:id", subject: Rpc.mailbox.inboxDelete, toRpc: inbox },
  { method: "post", path: "/inboxes/:id/addresses", subject: Rpc.mailbox.addressAdd, toRpc: (r) => ({ ...inbox(r), body: body(r) }) },
  {
    method: "delete",
    path: "/inboxes/:id/addresses/:address",
    subject: Rpc.mailbox.addressRemove,
    toRpc: (r) => ({ ...inbox(r), address: param(r, "address") }),
  },
  { method: "post", path: "/domains", subject: Rpc.mailbox.domainAdd, toRpc: (r) => ({ body: body(r) }) },
  { method: "get", path: "/domains", subject: Rpc.mailbox.domainList, toRpc: () => ({}) },
  { method: "get", path: "/domains/:domain", subject: Rpc.mailbox.domainGet, toRpc: (r) => ({ domain: param(r, "domain") }) },
  { method: "delete", path: "/domains/:domain", subject: Rpc.mailbox.domainRemove, toRpc: (r) => ({ domain: param(r, "domain") }) },
  { method: "get", path: "/domains/:domain/verify", subject: Rpc.mailbox.domainVerify, toRpc: (r) => ({ domain: param(r, "domain") }) },
  { method: "post", path: "/domains/:domain/verify", subject: Rpc.mailbox.domainVerify, toRpc: (r) => ({ domain: param(r, "domain") }) },
  { method: "get", path: "/platform/domain", subject: Rpc.mailbox.platformDomainGet, toRpc: () => ({}) },
  { method: "post", path: "/platform/domain/verify", subject: Rpc.mailbox.platformDomainVerify, toRpc: () => ({}) },
  { method: "post", path: "/inboxes/:id/send", subject: Rpc.mailbox.messageSend, toRpc: sending(inbox) },
  { method: "post", path: "/inboxes/:id/messages", subject: Rpc.mailbox.messageSend, toRpc: sending(inbox) },
  { method: "post", path: "/inboxes/:id/reply/:mid", subject: Rpc.mailbox.messageReply, toRpc: sending(message) },
  { method: "post", path: "/inboxes/:id/reply-all/:mid", subject: Rpc.mailbox.messageReplyAll, toRpc: sending(message) },
  { method: "post", path: "/inboxes/:id/forward/:mid", subject: Rpc.mailbox.messageForward, toRpc: sending(message) },
  { method: "get", path: "/inboxes/:id/messages", subject: Rpc.mailbox.messageList, toRpc: (r) => ({ ...query(r), ...inbox(r) }) },
  { method: "get", path: "/inboxes/:id/messages/:mid", subject: Rpc.mailbox.messageGet, toRpc: message },
  { method: "patch", path: "/inboxes/:id/messages/:mid", subject: Rpc.mailbox.messagePatch, toRpc: withBody(message) },
  { method: "delete", path: "/inboxes/:id/messages/:mid", subject: Rpc.mailbox.messageDelete, toRpc: message },
  { method: "get", path: "/inboxes/:id/messages/:mid/raw", subject: Rpc.mailbox.messageRaw, toRpc: message },
  { method: "get", path: "/inboxes/:id/messages/:mid/attachments", subject: Rpc.mailbox.attachmentList, toRpc: message },
  {
    method: "get",
    path: "/inboxes/:id/messages/:mid/attachments/:aid",
    subject: Rpc.mailbox.attachmentGet,
    toRpc: (r) => ({ ...message(r), attachmentId: param(r, "aid") }),
  },
  { method: "get", path: "/inboxes/:id/threads/:tid", subject: Rpc.mailbox.threadGet, toRpc: (r) => ({ inboxId: param(r, "id"), threadId: param(r, "tid") }) },
  { method: "get", path: "/messages", subject: Rpc.mailbox.mailboxView, toRpc: query },
  { method: "get", path: "/messages/folders/counts", subject: Rpc.mailbox.folderCounts, toRpc: query },
  { method: "post", path: "/inboxes/:id/drafts", subject: Rpc.mailbox.draftCreate, toRpc: withBody(inbox) },
  { method: "get", path: "/inboxes/:id/drafts", subject: Rpc.mailbox.draftList, toRpc: (r) => ({ ...query(r), ...inbox(r) }) },
  { method: "get", path: "/inboxes/:id/drafts/:did", subject: Rpc.mailbox.draftGet, toRpc: (r) => ({ ...inbox(r), draftId: param(r, "did") }) },
  { method: "patch", path: "/inboxes/:id/drafts/:did", subject: Rpc.mailbox.draftUpdate, toRpc: (r) => ({ ...inbox(r), draftId: param(r, "did"), body: body(r) }) },
  { method: "delete", path: "/inboxes/:id/drafts/:did", subject: Rpc.mailbox.draftDelete, toRpc: (r) => ({ ...inbox(r), draftId: param(r, "did") }) },
  { method: "post", path: "/inboxes/:id/drafts/:did/send", subject: Rpc.mailbox.draftSend, toRpc: (r) => ({ ...inbox(r), draftId: param(r, "did") }) },
  { method: "post", path: "/inboxes/:id/lists", subject: Rpc.mailbox.listCreate, toRpc: withBody(inbox) },
  { method: "get", path: "/inboxes/:id/lists", subject: Rpc.mailbox.listList, toRpc: inbox },
  { method: "get", path: "/inboxes/:id/lists/:lid", subject: Rpc.mailbox.listGet, toRpc: list },
  { method: "patch", path: "/inboxes/:id/lists/:lid", subject: Rpc.mailbox.listUpdate, toRpc: withBody(list) },
  { method: "delete", path: "/inboxes/:id/lists/:lid", subject: Rpc.mailbox.listDelete, toRpc: list },
  { method: "post", path: "/inboxes/:id/lists/:lid/entries", subject: Rpc.mailbox.entryAdd, toRpc: withBody(list) },
  { method: "patch", path: "/inboxes/:id/lists/:lid/entries/:eid", subject: Rpc.mailbox.entryUpdate, toRpc: withBody(entry) },
  { method: "delete", path: "/inboxes/:id/lists/:lid/entries/:eid", subject: Rpc.mailbox.entryRemove, toRpc: entry },
];
