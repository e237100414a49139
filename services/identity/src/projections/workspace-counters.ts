import { sql } from "kysely";
import { ZodError } from "zod";
import { contextEventsFilter } from "@mam/contracts/envelope.ts";
import { IDENTITY_CONTEXT } from "@mam/contracts/identity-events.ts";
import { MAILBOX_CONTEXT, parseMailboxEvent } from "@mam/contracts/mailbox-events.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import { applyConsumed, applyOnce } from "@mam/service-kit/event-sourcing.ts";
import { startProjection } from "@mam/service-kit/projection.ts";
import type { IdentityContext } from "../context.ts";
import { execute } from "../commands/append.ts";
import { revokeDraft } from "../commands/issue-key.ts";

/** A deleted inbox's ak_ keys stop working: revoked like any key (idempotent on redelivery). */
async function revokeInboxKeys(ctx: IdentityContext, tenantId: string, workspaceId: string, inboxId: string) {
  await execute(
    ctx,
    tenantId,
    { actor: { type: "system", id: "inbox-deleted" }, requestId: `inbox-deleted:${inboxId}` },
    async (tx) => {
      const keys = await tx
        .selectFrom("api_keys")
        .selectAll()
        .where("workspace_id", "=", workspaceId)
        .where("inbox_id", "=", inboxId)
        .where("revoked_at", "is", null)
        .execute();
      return keys.map((k) => revokeDraft(k, workspaceId, "revoked"));
    },
    async () => undefined,
  );
}

export const COUNTERS = "identity-workspace-counters";

const DELTAS: Record<string, ["inbox_count" | "domain_count", number]> = {
  InboxCreated: ["inbox_count", 1],
  InboxDeleted: ["inbox_count", -1],
  DomainAdded: ["domain_count", 1],
  DomainRemoved: ["domain_count", -1],
};

/**
 * Workspace.inboxCount and domainCount, kept from the mailbox's events, and the ak_ keys
 * of deleted inboxes revoked. They follow the mailbox by a moment: the mailbox owns
 * inboxes and domains, identity only counts them and owns their keys.
 */
export function startWorkspaceCounters(ctx: IdentityContext, backbone: Backbone<any>) {
  return startProjection({
    backbone,
    projection: COUNTERS,
    filterSubject: contextEventsFilter(ctx.bus.prefix, MAILBOX_CONTEXT),
    isPoison: (err) => err instanceof ZodError,
    handle: async (msg) => {
      const type = msg.subject.split(".").at(-1) ?? "";
      const delta = DELTAS[type];
      if (!delta) return;
      const e = parseMailboxEvent(msg.json());
      const [column, by] = delta;
      if (e.type === "InboxDeleted") await revokeInboxKeys(ctx, e.tenantId!, e.workspaceId!, e.data.inboxId);
      await applyConsumed(ctx.db, IDENTITY_CONTEXT, e, (tx) =>
        applyOnce(tx, COUNTERS, e, msg.seq, async () => {
          await tx
            .updateTable("workspaces")
            .set({ [column]: sql`greatest(0, ${sql.ref(column)} + ${by})` })
            .where("workspace_id", "=", e.workspaceId!)
            .execute();
        }),
      );
    },
  });
}
