import { AppError, notFound, parseOrThrow } from "@mam/contracts/errors.ts";
import { ListInboxesQuery, UpdateInboxBody, UpdateInboxCommand, type Inbox } from "@mam/contracts/mailbox-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { MailboxContext } from "../context.ts";
import { inboxView, liveInboxes, visibleInbox } from "../read/inboxes.ts";
import { execute, type CommandMeta } from "./execute.ts";

/** A tk_ key lists its tenant's inboxes (optionally one workspace's), a wk_ key its workspace's, an ak_ key its own. */
export async function listInboxes(ctx: MailboxContext, claims: ScopeClaims, raw: unknown): Promise<{ inboxes: Inbox[] }> {
  if (claims.kind === "super_admin" || !claims.tenantId) throw new AppError("FORBIDDEN", "The operator key manages tenants only");
  const { workspace } = parseOrThrow(ListInboxesQuery, raw, "query");
  let scope = claims.workspaces;
  if (workspace) {
    // Filtering is the tenant key's; a narrower key may only name the workspace it already has.
    if (scope !== "*" && !scope.includes(workspace)) throw notFound("Workspace");
    scope = [workspace];
  }
  return { inboxes: await liveInboxes(ctx.db, claims.tenantId, scope, claims.inboxId) };
}

export async function getInbox(ctx: MailboxContext, claims: ScopeClaims, id: unknown): Promise<Inbox> {
  return inboxView(ctx.db, await visibleInbox(ctx.db, claims, id));
}

/** displayName and metadata only: the address identity of an inbox never changes. */
export async function updateInbox(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const cmd = parseOrThrow(UpdateInboxCommand, raw);
  const body = parseOrThrow(UpdateInboxBody, cmd.body);
  const inbox = await visibleInbox(ctx.db, claims, cmd.inboxId);
  return execute(
    ctx,
    inbox.tenant_id,
    meta,
    async (tx) => {
      const live = await visibleInbox(tx, claims, cmd.inboxId);
      return [
        {
          event: { type: "InboxUpdated", schemaVersion: 1, data: { inboxId: live.inbox_id, displayName: body.displayName, metadata: body.metadata } },
          tenantId: live.tenant_id,
          workspaceId: live.workspace_id,
          aggregateId: live.inbox_id,
          aggregateVersion: live.version + 1,
        },
      ];
    },
    async () => ({ updated: true, id: inbox.inbox_id }),
  );
}

/** Soft delete: messages stay, the inbox and its addresses disappear; the addresses become free. */
export async function deleteInbox(ctx: MailboxContext, claims: ScopeClaims, id: unknown, meta: CommandMeta) {
  if (claims.kind !== "tenant" && claims.kind !== "workspace") throw new AppError("FORBIDDEN", "Only tk_ and wk_ keys can delete inboxes");
  const inbox = await visibleInbox(ctx.db, claims, id);
  return execute(
    ctx,
    inbox.tenant_id,
    meta,
    async (tx) => {
      const live = await visibleInbox(tx, claims, id);
      const addrs = await tx.selectFrom("inbox_addresses").select("address").where("workspace_id", "=", live.workspace_id).where("inbox_id", "=", live.inbox_id).execute();
      return [
        {
          event: { type: "InboxDeleted", schemaVersion: 1, data: { inboxId: live.inbox_id, addresses: addrs.map((a) => a.address) } },
          tenantId: live.tenant_id,
          workspaceId: live.workspace_id,
          aggregateId: live.inbox_id,
          aggregateVersion: live.version + 1,
        },
      ];
    },
    async () => ({ deleted: true, id: inbox.inbox_id }),
  );
}
