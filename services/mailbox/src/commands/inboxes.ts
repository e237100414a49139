import { parseOrThrow } from "@mam/contracts/errors.ts";
import { UpdateInboxBody, UpdateInboxCommand } from "@mam/contracts/mailbox-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { MailboxContext } from "../context.ts";
import { execute, type CommandMeta } from "./execute.ts";
import { idParam } from "./ids.ts";
import { decide, type InboxCommand } from "./inbox-decisions.ts";
import { loadInbox, tenantOf } from "./inbox-load.ts";

/** displayName and metadata only: the address identity of an inbox never changes. */
export async function updateInbox(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const cmd = parseOrThrow(UpdateInboxCommand, raw);
  const body = parseOrThrow(UpdateInboxBody, cmd.body);
  const inboxId = idParam(cmd.inboxId, "inbox id");
  const command: InboxCommand = { type: "UpdateInbox", caller: claims, inboxId, displayName: body.displayName, metadata: body.metadata };
  return execute(ctx, tenantOf(claims), meta, {
    load: (tx) => loadInbox(tx, inboxId),
    decide: (state) => decide(command, state),
    answer: async () => ({ updated: true, id: inboxId }),
  });
}

/** Soft delete: messages stay, the inbox and its addresses disappear; the addresses become free. */
export async function deleteInbox(ctx: MailboxContext, claims: ScopeClaims, id: unknown, meta: CommandMeta) {
  const inboxId = idParam(id, "inbox id");
  const command: InboxCommand = { type: "DeleteInbox", caller: claims, inboxId };
  return execute(ctx, tenantOf(claims), meta, {
    load: (tx) => loadInbox(tx, inboxId),
    decide: (state) => decide(command, state),
    answer: async () => ({ deleted: true, id: inboxId }),
  });
}
