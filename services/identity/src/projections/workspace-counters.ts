import { sql } from "kysely";
import { ZodError } from "zod";
import { eventSubject } from "@mam/contracts/envelope.ts";
import { IDENTITY_CONTEXT } from "@mam/contracts/identity-events.ts";
import { MAILBOX_CONTEXT, parseMailboxEvent } from "@mam/contracts/mailbox-events.ts";
import { applyConsumed, applyOnce, wasApplied } from "@mam/service-kit/event-sourcing.ts";
import type { ProjectionSpec } from "@mam/service-kit/projection.ts";
import type { IdentityContext } from "../context.ts";
import { revokeInboxKeys } from "../commands/inbox-keys.ts";

/**
 * The one consumer of every mailbox event that kept the counters until 2026-12: three of every
 * four deliveries it took were messages, each acknowledged for nothing. Retired at start.
 */
export const RETIRED_COUNTERS = "identity-workspace-counters";

const DELTAS = {
  InboxCreated: ["inbox_count", 1, "identity-counts-inbox-created"],
  InboxDeleted: ["inbox_count", -1, "identity-counts-inbox-deleted"],
  DomainAdded: ["domain_count", 1, "identity-counts-domain-added"],
  DomainRemoved: ["domain_count", -1, "identity-counts-domain-removed"],
} as const;

/**
 * Workspace.inboxCount and domainCount, kept from the mailbox's events, and the ak_ keys of
 * deleted inboxes revoked. They follow the mailbox by a moment: the mailbox owns inboxes and
 * domains, identity only counts them and owns their keys.
 *
 * One durable consumer per event type, filtered on it, so that no message of the mailbox is
 * delivered here (NATS 2.9 takes one filter per consumer). The types then arrive in no order
 * among themselves (an inbox's deletion may be applied before its creation, by a moment or in
 * a replay), so a counter is a plain sum of deltas, never clamped at zero: applied in any
 * order, each once, they end where the mailbox is. A sum caught half way may be negative for
 * a moment; it is read as zero (toWorkspace).
 */
export function workspaceCounters(ctx: IdentityContext): ProjectionSpec[] {
  return Object.entries(DELTAS).map(([type, [column, by, name]]) => ({
    name,
    filterSubject: (prefix) => eventSubject(prefix, { context: MAILBOX_CONTEXT, tenantId: "*", workspaceId: "*", type }),
    isPoison: (err) => err instanceof ZodError,
    handle: async (msg) => {
      const e = parseMailboxEvent(msg.json());
      if (e.type !== type) return;
      // Keys revoked before the deletion is counted, so a deletion found counted had its keys
      // revoked already (a replay passes over it without a command).
      if (e.type === "InboxDeleted" && !(await wasApplied(ctx.db, e))) await revokeInboxKeys(ctx, e.tenantId!, e.workspaceId!, e.data.inboxId);
      await applyConsumed(ctx.db, IDENTITY_CONTEXT, e, (tx) =>
        applyOnce(tx, name, e, msg.seq, async () => {
          await tx
            .updateTable("workspaces")
            .set({ [column]: sql`${sql.ref(column)} + ${by}` })
            .where("workspace_id", "=", e.workspaceId!)
            .execute();
        }),
      );
    },
  }));
}
