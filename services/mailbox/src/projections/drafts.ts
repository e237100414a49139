import { sql, type Kysely } from "kysely";
import type { MailboxEnvelope } from "@mam/contracts/mailbox-events.ts";
import type { MailboxDb } from "../db/schema.ts";

type DraftEvent = Extract<MailboxEnvelope, { type: "DraftSaved" | "DraftDeleted" }>;

/** Moves an inbox's count of live drafts (folder_counts, folder `drafts`) by `by`. */
async function countDrafts(tx: Kysely<MailboxDb>, workspaceId: string, inboxId: string, by: number) {
  await tx
    .insertInto("folder_counts")
    .values({ workspace_id: workspaceId, inbox_id: inboxId, folder: "drafts", total: by, unread: 0, threads: 0 })
    .onConflict((oc) => oc.columns(["workspace_id", "inbox_id", "folder"]).doUpdateSet({ total: sql`folder_counts.total + excluded.total` }))
    .execute();
}

/** Drafts of an inbox, and how many are live: +1 when one is first saved, -1 when a live one is deleted. */
export async function evolveDrafts(tx: Kysely<MailboxDb>, e: DraftEvent): Promise<void> {
  const workspaceId = e.workspaceId!;
  switch (e.type) {
    case "DraftSaved": {
      const r = await tx
        .insertInto("drafts")
        .values({
          workspace_id: workspaceId,
          draft_id: e.data.draftId,
          inbox_id: e.data.inboxId,
          fields: JSON.stringify(e.data.fields),
          version: e.aggregateVersion,
          created_at: e.occurredAt,
          updated_at: e.occurredAt,
          deleted_at: null,
        })
        .onConflict((oc) =>
          oc
            .columns(["workspace_id", "draft_id"])
            .doUpdateSet({ fields: JSON.stringify(e.data.fields), version: e.aggregateVersion, updated_at: e.occurredAt }),
        )
        // xmax is 0 on a row this statement inserted, not on one it updated.
        .returning(sql<boolean>`xmax = 0`.as("inserted"))
        .executeTakeFirstOrThrow();
      if (r.inserted) await countDrafts(tx, workspaceId, e.data.inboxId, 1);
      return;
    }
    case "DraftDeleted": {
      const gone = await tx
        .updateTable("drafts")
        .set({ deleted_at: e.occurredAt, updated_at: e.occurredAt, version: e.aggregateVersion })
        .where("workspace_id", "=", workspaceId)
        .where("draft_id", "=", e.data.draftId)
        .where("deleted_at", "is", null)
        .returning("inbox_id")
        .execute();
      for (const d of gone) await countDrafts(tx, workspaceId, d.inbox_id, -1);
      return;
    }
    default: {
      const unreachable: never = e;
      throw new Error(`unhandled draft event ${(unreachable as DraftEvent).type}`);
    }
  }
}
