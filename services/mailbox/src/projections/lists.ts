import type { Kysely } from "kysely";
import type { MailboxEnvelope } from "@mam/contracts/mailbox-events.ts";
import type { MailboxDb } from "../db/schema.ts";

type ListEvent = Extract<MailboxEnvelope, { type: `List${string}` }>;

/** Lists and their entries: named address groups of one inbox. */
export async function evolveLists(tx: Kysely<MailboxDb>, e: ListEvent): Promise<void> {
  const ws = e.workspaceId!;
  const touch = () =>
    tx
      .updateTable("lists")
      .set({ version: e.aggregateVersion, updated_at: e.occurredAt })
      .where("workspace_id", "=", ws)
      .where("list_id", "=", e.data.listId)
      .execute();
  switch (e.type) {
    case "ListCreated":
      await tx
        .insertInto("lists")
        .values({
          workspace_id: ws,
          list_id: e.data.listId,
          inbox_id: e.data.inboxId,
          name: e.data.name,
          description: e.data.description,
          version: e.aggregateVersion,
          created_at: e.occurredAt,
          updated_at: e.occurredAt,
          deleted_at: null,
        })
        .onConflict((oc) => oc.columns(["workspace_id", "list_id"]).doNothing())
        .execute();
      return;
    case "ListUpdated": {
      const set: { name?: string; description?: string | null } = {};
      if (e.data.name !== undefined) set.name = e.data.name;
      if (e.data.description !== undefined) set.description = e.data.description;
      await touch();
      await tx.updateTable("lists").set(set).where("workspace_id", "=", ws).where("list_id", "=", e.data.listId).execute();
      return;
    }
    case "ListDeleted":
      await touch();
      await tx.updateTable("lists").set({ deleted_at: e.occurredAt }).where("workspace_id", "=", ws).where("list_id", "=", e.data.listId).execute();
      await tx.deleteFrom("list_entries").where("workspace_id", "=", ws).where("list_id", "=", e.data.listId).execute();
      return;
    case "ListEntryAdded":
      await touch();
      await tx
        .insertInto("list_entries")
        .values({
          workspace_id: ws,
          list_id: e.data.listId,
          entry_id: e.data.entryId,
          email: e.data.email,
          display_name: e.data.displayName,
          metadata: JSON.stringify(e.data.metadata),
          created_at: e.occurredAt,
        })
        .onConflict((oc) => oc.columns(["workspace_id", "list_id", "entry_id"]).doNothing())
        .execute();
      return;
    case "ListEntryUpdated": {
      const set: { display_name?: string | null; metadata?: string } = {};
      if (e.data.displayName !== undefined) set.display_name = e.data.displayName;
      if (e.data.metadata !== undefined) set.metadata = JSON.stringify(e.data.metadata);
      await touch();
      await tx
        .updateTable("list_entries")
        .set(set)
        .where("workspace_id", "=", ws)
        .where("list_id", "=", e.data.listId)
        .where("entry_id", "=", e.data.entryId)
        .execute();
      return;
    }
    case "ListEntryRemoved":
      await touch();
      await tx.deleteFrom("list_entries").where("workspace_id", "=", ws).where("list_id", "=", e.data.listId).where("entry_id", "=", e.data.entryId).execute();
      return;
    default: {
      const unreachable: never = e;
      throw new Error(`unhandled list event ${(unreachable as ListEvent).type}`);
    }
  }
}
