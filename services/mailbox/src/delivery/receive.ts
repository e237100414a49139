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

interface Filing {
  target: Target;
  facts: Omit<MessageFacts, "messageId" | "inboxId" | "threadId">;
  source: { dedupeParts: string[]; sourceMessageId: string | null; authentication?: Authentication | null };
  done: (err?: unknown) => void;
}

const MAX_BATCH = 200;

/**
 * Files inbound messages into inboxes. Filings of one tenant that arrive while another
 * batch of that tenant is being committed wait and are committed together: one lock, one
 * transaction and one round of appends for the lot (group commit), instead of one each.
 * Every message gets an id derived from `dedupeParts` and its inbox, so the same delivery
 * arriving twice leaves one copy.
 */
export class Filer {
  private readonly queues = new Map<string, Filing[]>();
  private readonly busy = new Set<string>();

  constructor(private readonly ctx: MailboxContext) {}

  async file(target: Target, facts: Filing["facts"], blobs: Buffer[], source: Filing["source"]): Promise<void> {
    // Content-addressed and idempotent: stored before the lock, so the lock covers only the decision.
    for (const data of blobs) await putBlob(this.ctx.db, target.workspace_id, data, this.ctx.clock());
    await new Promise<void>((resolve, reject) => {
      const q = this.queues.get(target.tenant_id) ?? [];
      q.push({ target, facts, source, done: (err) => (err ? reject(err) : resolve()) });
      this.queues.set(target.tenant_id, q);
      if (!this.busy.has(target.tenant_id)) void this.drain(target.tenant_id);
    });
  }

  private async drain(tenantId: string): Promise<void> {
    this.busy.add(tenantId);
    try {
      for (;;) {
        const q = this.queues.get(tenantId) ?? [];
        if (!q.length) break;
        const batch = q.splice(0, MAX_BATCH);
        try {
          await this.commit(tenantId, batch);
          for (const f of batch) f.done();
        } catch (err) {
          for (const f of batch) f.done(err);
        }
      }
    } finally {
      this.busy.delete(tenantId);
      this.queues.delete(tenantId);
    }
  }

  private commit(tenantId: string, batch: Filing[]): Promise<void> {
    return execute(
      this.ctx,
      tenantId,
      SYSTEM,
      async (tx) => {
        const drafts = [];
        const inBatch = new Map<string, string>(); // workspace/inbox/header → thread, for replies within the batch
        const seen = new Set<string>();
        for (const { target, facts, source } of batch) {
          const messageId = derivedId(...source.dedupeParts, target.inbox_id);
          if (seen.has(messageId)) continue;
          seen.add(messageId);
          const exists = await tx.selectFrom("messages").select("message_id").where("workspace_id", "=", target.workspace_id).where("message_id", "=", messageId).executeTakeFirst();
          if (exists) continue;
          const key = (h: string) => `${target.workspace_id}/${target.inbox_id}/${h}`;
          const local = [facts.inReplyTo, ...[...facts.references].reverse()].map((h) => (h ? inBatch.get(key(h)) : undefined)).find(Boolean);
          const threadId = local ?? (await threadFor(tx, target.workspace_id, target.inbox_id, facts, derivedId("thread", messageId)));
          inBatch.set(key(facts.messageIdHeader), threadId);
          drafts.push({
            event: {
              type: "MessageReceived" as const,
              schemaVersion: 1 as const,
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
          });
        }
        return drafts;
      },
      async () => undefined,
    );
  }
}
