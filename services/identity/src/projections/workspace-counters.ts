import { sql } from "kysely";
import { ZodError } from "zod";
import { contextEventsFilter } from "@mam/contracts/envelope.ts";
import { IDENTITY_CONTEXT } from "@mam/contracts/identity-events.ts";
import { MAILBOX_CONTEXT, parseMailboxEvent } from "@mam/contracts/mailbox-events.ts";
import { applyConsumed, applyOnce } from "@mam/service-kit/event-sourcing.ts";
import type { ProjectionSpec } from "@mam/service-kit/projection.ts";
import type { IdentityContext } from "../context.ts";
import { revokeInboxKeys } from "../commands/inbox-keys.ts";

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
export function workspaceCounters(ctx: IdentityContext): ProjectionSpec {
  return {
    name: COUNTERS,
    filterSubject: (prefix) => contextEventsFilter(prefix, MAILBOX_CONTEXT),
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
  };
}
