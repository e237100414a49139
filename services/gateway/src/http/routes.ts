import type { KeyKind } from "@mam/contracts/keys.ts";
import type { RpcContract } from "@mam/contracts/rpc-contract.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import { serviceOfSubject, type ScopeAudience } from "@mam/contracts/scope.ts";
import { route, type ForwardRoute } from "./route.ts";

const I = RpcContracts.identity;
const M = RpcContracts.mailbox;
const R = RpcContracts.realtime;
const B = RpcContracts.billing;

const OPERATOR: KeyKind[] = ["super_admin"];
const TENANT: KeyKind[] = ["tenant"];
/** The operator, or a tenant's own tk_ key (another tenant is a 404). */
const TENANT_ADMIN: KeyKind[] = ["super_admin", "tenant"];
const MANAGERS: KeyKind[] = ["tenant", "workspace"];
/** Any key that sees the resource; an ak_ key sees its own inbox only. */
const IN_SCOPE: KeyKind[] = ["tenant", "workspace", "inbox"];

const SENDING = ["PLAN_LIMIT_REACHED", "INBOX_PAUSED", "SMTP_ERROR"] as const;
const sent = { status: [200], errors: SENDING, tag: "Messages", keys: IN_SCOPE } as const;

/** Public `/v1` routes, each forwarded to the service owning its contract. */
export const forwardRoutes: ForwardRoute[] = [
  route("post", "/tenants", I.tenantCreate, {
    summary: "Create a tenant with its Default workspace and tk_ key",
    tag: "Tenants",
    keys: OPERATOR,
    status: [201],
    from: "body",
  }),

  route("post", "/workspaces", I.workspaceCreate, {
    summary: "Create a workspace",
    tag: "Workspaces",
    keys: TENANT,
    status: [201],
    from: "body",
    errors: ["CONFLICT"],
  }),
  route("get", "/workspaces", I.workspaceList, { summary: "List the workspaces the key sees", tag: "Workspaces", keys: IN_SCOPE }),
  route("get", "/workspaces/:workspaceId", I.workspaceGet, { summary: "Get a workspace", tag: "Workspaces", keys: IN_SCOPE }),
  route("delete", "/workspaces/:workspaceId", I.workspaceDelete, {
    summary: "Delete a workspace",
    description: "Revokes every key scoped to it. The tenant's Default workspace cannot be deleted.",
    tag: "Workspaces",
    keys: TENANT,
    errors: ["CONFLICT"],
  }),
  route("post", "/workspaces/:workspaceId/keys", I.keyIssue, {
    summary: "Issue a wk_ key for a workspace",
    description: "The plaintext `key` is in this response only.",
    tag: "Workspaces",
    keys: TENANT,
    status: [201],
  }),
  route("get", "/workspaces/:workspaceId/keys", I.keyList, { summary: "List a workspace's keys (prefixes only)", tag: "Workspaces", keys: TENANT }),
  route("delete", "/workspaces/:workspaceId/keys/:keyId", I.keyRevoke, { summary: "Revoke a workspace key", tag: "Workspaces", keys: TENANT }),

  route("post", "/tenant/keys/rotate", I.tenantKeyRotate, {
    summary: "Rotate the calling tk_ key",
    description: "Issues a new tk_ key (the plaintext `key` is in this response only) and revokes the key that called, on every gateway within a second.",
    tag: "Tenants",
    keys: TENANT,
    status: [201],
  }),
  route("post", "/tenants/:tenantId/keys/rotate", I.tenantKeyReissue, {
    summary: "Revoke every tk_ key of a tenant and issue a new one",
    description: "For a leaked or lost tk_ key. The plaintext `key` is in this response only.",
    tag: "Tenants",
    keys: TENANT_ADMIN,
    status: [201],
  }),
  route("delete", "/tenants/:tenantId/keys/:keyId", I.tenantKeyRevoke, { summary: "Revoke one tk_ key of a tenant", tag: "Tenants", keys: TENANT_ADMIN }),

  route("post", "/inboxes", M.inboxCreate, {
    summary: "Create an inbox",
    description:
      "201 with its ak_ key (`apiKey`, shown once) on first creation; 200 with `existed: true` when the tenant already has the address. " +
      "An address taken by another tenant falls back to `name1` … `name99`, unless `strict=true`.",
    tag: "Inboxes",
    keys: MANAGERS,
    status: [201, 200],
    errors: ["USERNAME_TAKEN", "PLAN_LIMIT_REACHED"],
  }),
  route("get", "/inboxes", M.inboxList, { summary: "List the inboxes the key sees", tag: "Inboxes", keys: IN_SCOPE, from: "query" }),
  route("get", "/inboxes/:inboxId", M.inboxGet, { summary: "Get an inbox", tag: "Inboxes", keys: IN_SCOPE }),
  route("patch", "/inboxes/:inboxId", M.inboxUpdate, { summary: "Update an inbox's display name or metadata", tag: "Inboxes", keys: IN_SCOPE }),
  route("delete", "/inboxes/:inboxId", M.inboxDelete, { summary: "Delete an inbox (its messages are kept)", tag: "Inboxes", keys: MANAGERS }),
  route("post", "/inboxes/:inboxId/addresses", M.addressAdd, {
    summary: "Add an address (alias) to an inbox",
    tag: "Inboxes",
    keys: IN_SCOPE,
    status: [201],
    errors: ["CONFLICT"],
  }),
  route("delete", "/inboxes/:inboxId/addresses/:address", M.addressRemove, {
    summary: "Remove an address from an inbox",
    description: "The canonical address cannot be removed; when the primary goes, the canonical address is primary again.",
    tag: "Inboxes",
    keys: IN_SCOPE,
    errors: ["CONFLICT"],
  }),

  route("post", "/domains", M.domainAdd, { summary: "Add a custom domain", tag: "Domains", keys: MANAGERS, status: [201], errors: ["CONFLICT"] }),
  route("get", "/domains", M.domainList, { summary: "List custom domains", tag: "Domains", keys: MANAGERS }),
  route("get", "/domains/:domain", M.domainGet, { summary: "Get a custom domain by id or name", tag: "Domains", keys: MANAGERS }),
  route("delete", "/domains/:domain", M.domainRemove, { summary: "Remove a custom domain", tag: "Domains", keys: MANAGERS, errors: ["CONFLICT"] }),
  route("get", "/domains/:domain/verify", M.domainVerify, {
    summary: "Check a domain's DNS records",
    tag: "Domains",
    keys: MANAGERS,
    operationId: "domainVerifyGet",
  }),
  route("post", "/domains/:domain/verify", M.domainVerify, { summary: "Check a domain's DNS records", tag: "Domains", keys: MANAGERS }),
  route("get", "/platform/domain", M.platformDomainGet, { summary: "The platform's mail domain and its DNS records", tag: "Platform", keys: OPERATOR }),
  route("post", "/platform/domain/verify", M.platformDomainVerify, { summary: "Check the platform domain's DNS records", tag: "Platform", keys: OPERATOR }),

  route("post", "/inboxes/:inboxId/send", M.messageSend, {
    ...sent,
    summary: "Send a message (a new thread)",
    description: "Recipients must have written to the inbox first unless `verified` is true. An `Idempotency-Key` makes a retry return the first answer.",
  }),
  route("post", "/inboxes/:inboxId/messages", M.messageSend, { ...sent, summary: "Send a message (alias of /send)", operationId: "messageSendAlias" }),
  route("post", "/inboxes/:inboxId/reply/:messageId", M.messageReply, { ...sent, summary: "Reply to a message's sender, in its thread" }),
  route("post", "/inboxes/:inboxId/reply-all/:messageId", M.messageReplyAll, { ...sent, summary: "Reply to everyone on a message, in its thread" }),
  route("post", "/inboxes/:inboxId/forward/:messageId", M.messageForward, { ...sent, summary: "Forward a message (a new thread)" }),
  route("get", "/inboxes/:inboxId/messages", M.messageList, {
    summary: "List an inbox's messages, newest first",
    tag: "Messages",
    keys: IN_SCOPE,
    from: "query",
  }),
  route("get", "/inboxes/:inboxId/messages/:messageId", M.messageGet, { summary: "Get a message (marks it read)", tag: "Messages", keys: IN_SCOPE }),
  route("patch", "/inboxes/:inboxId/messages/:messageId", M.messagePatch, {
    summary: "Set a message's read, starred or archived flags",
    tag: "Messages",
    keys: IN_SCOPE,
  }),
  route("delete", "/inboxes/:inboxId/messages/:messageId", M.messageDelete, { summary: "Delete a message (to the trash)", tag: "Messages", keys: IN_SCOPE }),
  route("get", "/inboxes/:inboxId/messages/:messageId/raw", M.messageRaw, {
    summary: "The message's raw RFC 5322 bytes",
    tag: "Messages",
    keys: IN_SCOPE,
    bytes: "message/rfc822",
  }),
  route("get", "/inboxes/:inboxId/messages/:messageId/attachments", M.attachmentList, {
    summary: "List a message's attachments",
    tag: "Messages",
    keys: IN_SCOPE,
  }),
  route("get", "/inboxes/:inboxId/messages/:messageId/attachments/:attachmentId", M.attachmentGet, {
    summary: "Download an attachment",
    description: "The body carries the attachment's own Content-Type, and a Content-Disposition with its file name.",
    tag: "Messages",
    keys: IN_SCOPE,
    bytes: "application/octet-stream",
  }),
  route("get", "/inboxes/:inboxId/threads/:threadId", M.threadGet, { summary: "Get a thread, oldest message first", tag: "Messages", keys: IN_SCOPE }),
  route("get", "/messages", M.mailboxView, { summary: "One folder across every inbox the key sees", tag: "Messages", keys: IN_SCOPE, from: "query" }),
  route("get", "/messages/folders/counts", M.folderCounts, { summary: "Message counts per folder", tag: "Messages", keys: IN_SCOPE, from: "query" }),

  route("post", "/inboxes/:inboxId/drafts", M.draftCreate, { summary: "Create a draft", tag: "Drafts", keys: IN_SCOPE, status: [201] }),
  route("get", "/inboxes/:inboxId/drafts", M.draftList, { summary: "List an inbox's drafts, newest first", tag: "Drafts", keys: IN_SCOPE, from: "query" }),
  route("get", "/inboxes/:inboxId/drafts/:draftId", M.draftGet, { summary: "Get a draft", tag: "Drafts", keys: IN_SCOPE }),
  route("patch", "/inboxes/:inboxId/drafts/:draftId", M.draftUpdate, { summary: "Update a draft (omitted fields stay)", tag: "Drafts", keys: IN_SCOPE }),
  route("delete", "/inboxes/:inboxId/drafts/:draftId", M.draftDelete, { summary: "Delete a draft", tag: "Drafts", keys: IN_SCOPE }),
  route("post", "/inboxes/:inboxId/drafts/:draftId/send", M.draftSend, {
    summary: "Send a draft and delete it",
    tag: "Drafts",
    keys: IN_SCOPE,
    errors: [...SENDING, "CONFLICT"],
  }),

  route("post", "/inboxes/:inboxId/lists", M.listCreate, { summary: "Create a list", tag: "Lists", keys: IN_SCOPE, status: [201], errors: ["CONFLICT"] }),
  route("get", "/inboxes/:inboxId/lists", M.listList, { summary: "List an inbox's lists", tag: "Lists", keys: IN_SCOPE }),
  route("get", "/inboxes/:inboxId/lists/:listId", M.listGet, { summary: "Get a list with its entries", tag: "Lists", keys: IN_SCOPE }),
  route("patch", "/inboxes/:inboxId/lists/:listId", M.listUpdate, { summary: "Rename or describe a list", tag: "Lists", keys: IN_SCOPE }),
  route("delete", "/inboxes/:inboxId/lists/:listId", M.listDelete, { summary: "Delete a list", tag: "Lists", keys: IN_SCOPE }),
  route("get", "/inboxes/:inboxId/lists/:listId/entries", M.entryList, { summary: "A list's entries, a page at a time", tag: "Lists", keys: IN_SCOPE }),
  route("post", "/inboxes/:inboxId/lists/:listId/entries", M.entryAdd, {
    summary: "Add an entry to a list",
    tag: "Lists",
    keys: IN_SCOPE,
    status: [201],
    errors: ["CONFLICT"],
  }),
  route("patch", "/inboxes/:inboxId/lists/:listId/entries/:entryId", M.entryUpdate, { summary: "Update a list entry", tag: "Lists", keys: IN_SCOPE }),
  route("delete", "/inboxes/:inboxId/lists/:listId/entries/:entryId", M.entryRemove, { summary: "Remove a list entry", tag: "Lists", keys: IN_SCOPE }),

  route("post", "/webhooks", R.webhookCreate, {
    summary: "Register a webhook",
    description:
      "Each event of the chosen types is POSTed to `url` as JSON, signed with the webhook's `secret` (in this response only): " +
      "`x-myagentmail-signature: v1=<hex HMAC-SHA256(secret, body)>`, and `x-myagentmail-signature-ts` over `<x-myagentmail-timestamp>.<body>`. " +
      "Any 2xx is success; anything else is retried with growing delays for hours. A tk_ key's webhook fires for every workspace of the tenant, a wk_ key's for its workspace.",
    tag: "Webhooks",
    keys: MANAGERS,
    status: [201],
    errors: ["PLAN_LIMIT_REACHED"],
  }),
  route("get", "/webhooks", R.webhookList, { summary: "List the webhooks the key sees", tag: "Webhooks", keys: MANAGERS }),
  route("get", "/webhooks/:webhookId", R.webhookGet, { summary: "Get a webhook and its delivery status", tag: "Webhooks", keys: MANAGERS }),
  route("patch", "/webhooks/:webhookId", R.webhookUpdate, { summary: "Change a webhook's URL or events, or pause it", tag: "Webhooks", keys: MANAGERS }),
  route("delete", "/webhooks/:webhookId", R.webhookDelete, {
    summary: "Delete a webhook",
    description: "Its pending deliveries are dropped.",
    tag: "Webhooks",
    keys: MANAGERS,
  }),
  route("get", "/webhooks/:webhookId/deliveries", R.webhookDeliveries, {
    summary: "A webhook's delivery log, newest attempt first",
    tag: "Webhooks",
    keys: MANAGERS,
    from: "query",
  }),

  route("get", "/billing", B.account, {
    summary: "The tenant's plan and what it uses of it this month",
    description:
      "The plan (null when no plans are configured: nothing is limited), its limits (null: unlimited), the status (active, past_due: a payment failed and the grace period runs, paused: sends refused with INBOX_PAUSED, canceled: the subscription ended, back on the free plan), " +
      "the period (the subscription's, else the current UTC month, `[start, end)`), and the usage: live inboxes and domains now, messages sent in the current UTC month. " +
      "Usage is counted from the event stream, a moment behind the limits the mailbox enforces. tk_ keys only.",
    tag: "Billing",
    keys: TENANT,
    from: "query",
  }),

  route("post", "/billing/checkout", B.checkout, {
    summary: "A Stripe Checkout Session URL to subscribe to a plan",
    description:
      "The plan must have a Stripe price (a free plan is a 400). The tenant's Stripe customer is created when first needed. " +
      "A tenant with a subscription already is a 409 (its plan changes in the customer portal). " +
      "Without Stripe configured on the platform (STRIPE_SECRET_KEY unset) the answer is 404 NOT_FOUND. tk_ keys only.",
    tag: "Billing",
    keys: TENANT,
    from: "body",
    errors: ["CONFLICT"],
  }),
  route("post", "/billing/portal", B.portal, {
    summary: "A Stripe customer-portal URL (change plan, payment method, cancel)",
    description: "Without Stripe configured on the platform (STRIPE_SECRET_KEY unset) the answer is 404 NOT_FOUND. tk_ keys only.",
    tag: "Billing",
    keys: TENANT,
  }),

  route("get", "/metrics", B.metrics, {
    summary: "Messages sent, received and bounced over a window, and the inboxes and domains held now",
    description:
      "`from` and `to` are ISO-8601, epoch seconds or epoch milliseconds (12 digits or more); the window is `[from, to)`, by default the last 30 days, at most 400 days. " +
      "A tk_ key sees its whole tenant and may narrow with `workspace` and/or `inbox`; a wk_ key is pinned to its workspace (an `inbox` of it narrows); an ak_ key sees its own inbox. " +
      "A workspace or inbox outside the key's scope is a 404.",
    tag: "Metrics",
    keys: IN_SCOPE,
    from: "query",
  }),
];

/**
 * Routes whose service asks identity on the caller's behalf, forwarding the caller's token
 * (the mailbox placing an inbox or a domain in a workspace, and minting an inbox's ak_
 * key). Their token names identity after the service, and identity accepts such a token
 * only for those requests (`identityOnBehalf`); every other route's token is for its own
 * service alone. Narrower than a token good at identity for anything: a token of any
 * other route, or of one of these used for anything else, is refused there.
 */
const IDENTITY = serviceOfSubject(I.workspaceGet.subject);
const consultsIdentity: ReadonlySet<RpcContract> = new Set<RpcContract>([M.inboxCreate, M.domainAdd]);

/** Who a route's scope token is for: the service owning its contract, then any it consults for the caller. */
export function audienceOf(r: ForwardRoute): ScopeAudience {
  const service = serviceOfSubject(r.contract.subject);
  return consultsIdentity.has(r.contract) ? [service, IDENTITY] : [service];
}
