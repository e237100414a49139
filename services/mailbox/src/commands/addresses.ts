import { AppError, notFound, parseOrThrow } from "@mam/contracts/errors.ts";
import { AddAddressBody, AddAddressCommand, RemoveAddressCommand } from "@mam/contracts/mailbox-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { MailboxContext } from "../context.ts";
import { verifiedInWorkspace } from "../read/domains.ts";
import { tryClaim, visibleInbox } from "../read/inboxes.ts";
import { execute, type CommandMeta } from "./execute.ts";

/** An alias for an inbox; by default it becomes the primary (outbound From) address. */
export async function addAddress(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const cmd = parseOrThrow(AddAddressCommand, raw);
  const body = parseOrThrow(AddAddressBody, cmd.body);
  const inbox = await visibleInbox(ctx.db, claims, cmd.inboxId);
  const domain = body.email.split("@")[1];
  if (domain !== ctx.cfg.MAIL_DOMAIN && !(await verifiedInWorkspace(ctx.db, inbox.workspace_id, domain!))) {
    throw new AppError("VALIDATION_ERROR", `The address must be on ${ctx.cfg.MAIL_DOMAIN} or a custom domain verified in this workspace`, [
      { path: "email", message: "domain not available to this workspace" },
    ]);
  }
  return execute(
    ctx,
    inbox.tenant_id,
    meta,
    async (tx) => {
      const live = await visibleInbox(tx, claims, cmd.inboxId);
      const owner = { tenant_id: live.tenant_id, workspace_id: live.workspace_id, inbox_id: live.inbox_id };
      if (!(await tryClaim(tx, body.email, owner))) throw new AppError("CONFLICT", `The address ${body.email} already exists`);
      return [
        {
          event: { type: "AddressAdded", schemaVersion: 1, data: { inboxId: live.inbox_id, address: body.email, isPrimary: body.primary } },
          tenantId: live.tenant_id,
          workspaceId: live.workspace_id,
          aggregateId: live.inbox_id,
          aggregateVersion: live.version + 1,
        },
      ];
    },
    async () => ({ status: 201, body: { ok: true, address: body.email, isPrimary: body.primary } }),
  );
}

/** Removes an alias. The canonical address stays; if the primary goes, the canonical one is primary again. */
export async function removeAddress(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const cmd = parseOrThrow(RemoveAddressCommand, raw);
  const address = cmd.address.trim().toLowerCase();
  const inbox = await visibleInbox(ctx.db, claims, cmd.inboxId);
  return execute(
    ctx,
    inbox.tenant_id,
    meta,
    async (tx) => {
      const live = await visibleInbox(tx, claims, cmd.inboxId);
      const row = await tx
        .selectFrom("inbox_addresses")
        .selectAll()
        .where("workspace_id", "=", live.workspace_id)
        .where("inbox_id", "=", live.inbox_id)
        .where("address", "=", address)
        .executeTakeFirst();
      if (!row) throw notFound("Address");
      if (row.is_canonical) throw new AppError("CONFLICT", "The canonical address of an inbox cannot be removed");
      return [
        {
          event: {
            type: "AddressRemoved",
            schemaVersion: 1,
            data: { inboxId: live.inbox_id, address, newPrimary: row.is_primary ? live.canonical_email : null },
          },
          tenantId: live.tenant_id,
          workspaceId: live.workspace_id,
          aggregateId: live.inbox_id,
          aggregateVersion: live.version + 1,
        },
      ];
    },
    async () => ({ deleted: true, address }),
  );
}
