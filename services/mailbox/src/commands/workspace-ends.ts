import type { Kysely } from "kysely";
import type { DurableConsumer } from "@mam/bus/consumer.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import { workspaceEndsConsumer as followWorkspaceEnds } from "@mam/service-kit/workspace-ends.ts";
import type { MailboxContext } from "../context.ts";
import type { MailboxDb } from "../db/schema.ts";
import { forgetKeysOfRemoved } from "./domain-claims.ts";
import { execute, type CommandMeta } from "./execute.ts";
import { isClosed } from "./inbox-load.ts";
import { decide, initial, type EndWorkspace, type WorkspaceEndState } from "./workspace-end-decision.ts";

/** The durable consumer of identity's WorkspaceDeleted events (shared by the mailbox's replicas). */
export const WORKSPACE_ENDS_DURABLE = "mailbox-workspace-ends";
/** Inboxes and domains ended per commit (each inbox's event writes a handful of rows and parameters). */
const ENDS_PER_COMMIT = 500;

/**
 * What one batch of the cascade needs, under the tenant's lock, in four statements: the
 * workspace's first live inboxes with their addresses, its first live domains, its closed mark.
 */
async function loadWorkspace(tx: Kysely<MailboxDb>, cmd: EndWorkspace & { batch: number }): Promise<WorkspaceEndState> {
  const state = initial();
  if (await isClosed(tx, cmd.workspaceId)) state.closed![cmd.workspaceId] = true;
  const inboxes = await tx
    .selectFrom("inboxes")
    .select(["inbox_id", "canonical_email", "version"])
    .where("workspace_id", "=", cmd.workspaceId)
    .where("tenant_id", "=", cmd.tenantId)
    .where("deleted_at", "is", null)
    // The decision ends a batch in id order: more need not be read.
    .orderBy("inbox_id")
    .limit(cmd.batch)
    .execute();
  const addresses = inboxes.length
    ? await tx
        .selectFrom("inbox_addresses")
        .select(["inbox_id", "address", "is_primary", "is_canonical"])
        .where("workspace_id", "=", cmd.workspaceId)
        .where(
          "inbox_id",
          "in",
          inboxes.map((i) => i.inbox_id),
        )
        .orderBy("created_at")
        .orderBy("address")
        .execute()
    : [];
  for (const i of inboxes) {
    const own = addresses.filter((a) => a.inbox_id === i.inbox_id);
    state.inboxes[i.inbox_id] = {
      id: i.inbox_id,
      tenantId: cmd.tenantId,
      workspaceId: cmd.workspaceId,
      canonicalEmail: i.canonical_email,
      version: i.version,
      addresses: Object.fromEntries(own.map((a) => [a.address, { isPrimary: a.is_primary, isCanonical: a.is_canonical }])),
    };
  }
  const domains = await tx
    .selectFrom("domains")
    .select(["domain_id", "domain", "version"])
    .where("workspace_id", "=", cmd.workspaceId)
    .where("tenant_id", "=", cmd.tenantId)
    .where("deleted_at", "is", null)
    .orderBy("domain_id")
    .limit(cmd.batch)
    .execute();
  for (const d of domains) {
    state.domains[d.domain_id] = { id: d.domain_id, name: d.domain, version: d.version, tenantId: cmd.tenantId, workspaceId: cmd.workspaceId };
  }
  return state;
}

/**
 * Ends a workspace in the mailbox, in one command of its tenant: its events (WorkspaceClosed,
 * an InboxDeleted per inbox, a DomainRemoved per domain) reach the read model and the outbox
 * in one transaction. Idempotent: decided again, it finds nothing left to end.
 */
export async function endWorkspace(ctx: MailboxContext, cmd: EndWorkspace, meta: CommandMeta): Promise<number> {
  const batch = cmd.batch ?? ENDS_PER_COMMIT;
  let total = 0;
  for (;;) {
    const decided = await execute(ctx, cmd.tenantId, meta, {
      load: (tx) => loadWorkspace(tx, { ...cmd, batch }),
      decide: (state) => decide({ ...cmd, batch }, state),
      answer: async (tx, _state, events) => {
        // A released domain's private DKIM key goes with it (the key store is no projection).
        await forgetKeysOfRemoved(tx, events);
        return events.filter((d) => d.event.type !== "WorkspaceClosed").length;
      },
    });
    total += decided;
    // A batch not full was the last one: nothing is left in the workspace.
    if (decided < batch) return total;
  }
}

/** Follows identity's WorkspaceDeleted events: the workspace ends in the mailbox too. */
export const workspaceEndsConsumer = (ctx: MailboxContext, backbone: Backbone<MailboxDb>): DurableConsumer =>
  followWorkspaceEnds({
    backbone,
    logger: ctx.logger,
    durable: WORKSPACE_ENDS_DURABLE,
    what: "workspace ended in the mailbox",
    end: (w, meta) => endWorkspace(ctx, w, meta),
  });
