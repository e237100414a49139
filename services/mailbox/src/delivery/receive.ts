import type { Kysely } from "kysely";
import type { Authentication, MessageFacts } from "@mam/contracts/message-events.ts";
import type { MailboxContext } from "../context.ts";
import type { MailboxDb } from "../db/schema.ts";
import { execute, type CommandMeta } from "../commands/execute.ts";
import { putBlob } from "../store/blobs.ts";
import { derivedId } from "./ids.ts";

const SYSTEM: CommandMeta = { actor: { type: "system", id: "delivery" }, requestId: "delivery" };

export interface Target {
  tenant_id: string;
  workspace_id: string;
  inbox_id: string;
}

/** The thread a message joins in an inbox: In-Reply-To first, then References, else a new one. */
async function threadFor(tx: Kysely<MailboxDb>, ws: string, inboxId: string, f: Pick<MessageFacts, "inReplyTo" | "references">, fallback: string): Promise<string> {
  for (const header of [f.inReplyTo, ...[...f.references].reverse()].filter((h): h is string => !!h)) {
    const hit = await tx
      .selectFrom("messages")
      .select("thread_id")
      .where("workspace_id", "=", ws)
      .where("inbox_id", "=", inboxId)
      .where("message_id_header", "=", header)
      .executeTakeFirst();
    if (hit) return hit.thread_id;
  }
  return fallback;
}

/**
 * Files an inbound message into one inbox: its bytes stored in the inbox's workspace, the
 * thread found, MessageReceived recorded. The id is derived from `dedupeParts`, so the
 * same delivery arriving twice leaves one copy.
 */
export async function receiveInto(
  ctx: MailboxContext,
  target: Target,
  facts: Omit<MessageFacts, "messageId" | "inboxId" | "threadId">,
  blobs: Buffer[],
  source: { dedupeParts: string[]; sourceMessageId: string | null; authentication?: Authentication | null },
): Promise<void> {
  const messageId = derivedId(...source.dedupeParts, target.inbox_id);
  // Content-addressed and idempotent: stored before the lock, so the lock covers only the decision.
  for (const data of blobs) await putBlob(ctx.db, target.workspace_id, data, ctx.clock());
  await execute(
    ctx,
    target.tenant_id,
    SYSTEM,
    async (tx) => {
      const exists = await tx.selectFrom("messages").select("message_id").where("workspace_id", "=", target.workspace_id).where("message_id", "=", messageId).executeTakeFirst();
      if (exists) return [];
      const threadId = await threadFor(tx, target.workspace_id, target.inbox_id, facts, derivedId("thread", messageId));
      return [
        {
          event: {
            type: "MessageReceived",
            schemaVersion: 1,
            data: {
              ...facts,
              messageId,
              inboxId: target.inbox_id,
              threadId,
              bcc: [],
              sourceMessageId: source.sourceMessageId,
              authentication: source.authentication ?? null,
            },
          },
          tenantId: target.tenant_id,
          workspaceId: target.workspace_id,
          aggregateId: messageId,
          aggregateVersion: 1,
        },
      ];
    },
    async () => undefined,
  );
}
