import type { Kysely } from "kysely";
import { applyOnce, applyOnceMany, type Sequenced } from "@mam/service-kit/event-sourcing.ts";
import type { IdentityEnvelope } from "@mam/contracts/identity-events.ts";
import { NO_WORKSPACE, type IdentityDb } from "../db/schema.ts";

export const PROJECTION = "identity-read-model";

/**
 * Applies one event to the read model inside the caller's transaction, once: a
 * redelivery, or the consumer seeing an event the command path already applied,
 * changes nothing.
 */
export function applyIdentityEvent(tx: Kysely<IdentityDb>, e: IdentityEnvelope, streamSeq: number): Promise<boolean> {
  return applyOnce(tx, PROJECTION, e, streamSeq, () => evolve(tx, e));
}

/** A command's events, in order, each once. */
export function applyIdentityEvents(tx: Kysely<IdentityDb>, events: Sequenced<IdentityEnvelope>[]): Promise<Sequenced<IdentityEnvelope>[]> {
  return applyOnceMany(tx, PROJECTION, events, async (fresh) => {
    for (const { e } of fresh) await evolve(tx, e);
  });
}

async function evolve(tx: Kysely<IdentityDb>, e: IdentityEnvelope): Promise<void> {
  switch (e.type) {
    case "TenantCreated":
      await tx
        .insertInto("tenants")
        .values({
          tenant_id: e.data.tenantId,
          name: e.data.name,
          default_workspace_id: e.data.defaultWorkspaceId,
          created_at: e.occurredAt,
        })
        .onConflict((oc) => oc.column("tenant_id").doNothing())
        .execute();
      return;
    case "WorkspaceCreated":
      await tx
        .insertInto("workspaces")
        .values({
          workspace_id: e.data.workspaceId,
          tenant_id: e.data.tenantId,
          name: e.data.name,
          slug: e.data.slug,
          is_default: e.data.isDefault,
          created_at: e.occurredAt,
          deleted_at: null,
        })
        .onConflict((oc) => oc.column("workspace_id").doNothing())
        .execute();
      return;
    case "WorkspaceDeleted":
      await tx
        .updateTable("workspaces")
        .set({ deleted_at: e.occurredAt })
        .where("workspace_id", "=", e.data.workspaceId)
        .where("deleted_at", "is", null)
        .execute();
      return;
    case "KeyIssued":
      await tx
        .insertInto("api_keys")
        .values({
          workspace_id: e.data.workspaceId ?? NO_WORKSPACE,
          key_id: e.data.keyId,
          tenant_id: e.data.tenantId,
          kind: e.data.kind,
          name: e.data.name,
          prefix: e.data.prefix,
          key_hash: e.data.keyHash,
          inbox_id: e.data.inboxId,
          created_at: e.occurredAt,
          revoked_at: null,
        })
        .onConflict((oc) => oc.columns(["workspace_id", "key_id"]).doNothing())
        .execute();
      return;
    case "KeyRevoked":
      await tx
        .updateTable("api_keys")
        .set({ revoked_at: e.occurredAt })
        .where("workspace_id", "=", e.workspaceId ?? NO_WORKSPACE)
        .where("key_id", "=", e.data.keyId)
        .where("revoked_at", "is", null)
        .execute();
      return;
    default: {
      const unreachable: never = e;
      throw new Error(`unhandled identity event ${(unreachable as IdentityEnvelope).type}`);
    }
  }
}
