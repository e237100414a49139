import type { Kysely } from "kysely";
import type { RealtimeEnvelope } from "@mam/contracts/realtime-events.ts";
import { applyOnce, applyOnceMany, NO_WORKSPACE, type Sequenced } from "@mam/service-kit/event-sourcing.ts";
import type { RealtimeDb } from "../db/schema.ts";

/** The read model of realtime's own events (its checkpoint rows, and its durable consumer's name). */
export const PROJECTION = "realtime-read-model";

/** Where a webhook's rows are filed: its workspace, or the nil one for a tenant-wide webhook. */
export const fileOf = (workspaceId: string | null) => workspaceId ?? NO_WORKSPACE;

/** Applies one consumed event, once (a redelivery, or one the command path applied, changes nothing). */
export function applyRealtimeEvent(tx: Kysely<RealtimeDb>, e: RealtimeEnvelope, streamSeq: number): Promise<boolean> {
  return applyOnce(tx, PROJECTION, e, streamSeq, () => evolve(tx, e));
}

/** A command's events, in order, each once. */
export function applyRealtimeEvents(tx: Kysely<RealtimeDb>, events: Sequenced<RealtimeEnvelope>[]): Promise<Sequenced<RealtimeEnvelope>[]> {
  return applyOnceMany(tx, PROJECTION, events, async (fresh) => {
    for (const { e } of fresh) await evolve(tx, e);
  });
}

async function evolve(tx: Kysely<RealtimeDb>, e: RealtimeEnvelope): Promise<void> {
  const at = new Date(e.occurredAt);
  switch (e.type) {
    case "WebhookCreated":
      await tx
        .insertInto("webhooks")
        .values({
          workspace_id: fileOf(e.data.workspaceId),
          webhook_id: e.data.webhookId,
          tenant_id: e.tenantId!,
          url: e.data.url,
          events: e.data.events,
          is_active: e.data.isActive,
          version: e.aggregateVersion,
          created_at: at,
          updated_at: at,
        })
        .onConflict((oc) => oc.columns(["workspace_id", "webhook_id"]).doNothing())
        .execute();
      return;
    case "WebhookUpdated": {
      const { url, events, isActive } = e.data;
      await tx
        .updateTable("webhooks")
        .set({
          ...(url !== undefined && { url }),
          ...(events !== undefined && { events }),
          ...(isActive !== undefined && { is_active: isActive }),
          version: e.aggregateVersion,
          updated_at: at,
        })
        .where("workspace_id", "=", fileOf(e.workspaceId))
        .where("webhook_id", "=", e.data.webhookId)
        .execute();
      return;
    }
    case "WebhookDeleted":
      await tx.deleteFrom("webhooks").where("workspace_id", "=", fileOf(e.workspaceId)).where("webhook_id", "=", e.data.webhookId).execute();
      return;
    default: {
      const unreachable: never = e;
      throw new Error(`unhandled realtime event ${(unreachable as RealtimeEnvelope).type}`);
    }
  }
}
