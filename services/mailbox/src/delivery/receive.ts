import type { Kysely } from "kysely";
import { AppError } from "@mam/contracts/errors.ts";
import { TenantBatches } from "@mam/service-kit/tenant-batches.ts";
import type { Authentication, MessageFacts } from "@mam/contracts/message-events.ts";
import type { MailboxContext } from "../context.ts";
import type { MailboxDb } from "../db/schema.ts";
import { execute, type CommandMeta } from "../commands/execute.ts";
import { putBlobs } from "../store/blobs.ts";
import { derivedId } from "./ids.ts";

const SYSTEM: CommandMeta = { actor: { type: "system", id: "delivery" }, requestId: "delivery" };

export interface Target {
  tenant_id: string;
  workspace_id: string;
  inbox_id: string;
}

/** Bytes larger than this are stored on their own before the batch, not inside its statement. */
const INLINE_BLOB_BYTES = 256 * 1024;

interface Filing {
  target: Target;
  blobs: Buffer[];
  facts: Omit<MessageFacts, "messageId" | "inboxId" | "threadId">;
  source: { dedupeParts: string[]; sourceMessageId: string | null; authentication?: Authentication | null };
  done: (err?: unknown) => void;
}

const MAX_BATCH = 200;
const MAX_BATCH_BYTES = 8 * 1024 * 1024;

/** How many filings from the head of the queue make one commit: by count and by bytes. */
function batchLength(q: Filing[]): number {
  let bytes = 0;
  let n = 0;
  while (n < q.length && n < MAX_BATCH) {
    bytes += q[n]!.blobs.reduce((sum, b) => sum + b.length, 0);
    if (n > 0 && bytes > MAX_BATCH_BYTES) break;
    n++;
  }
  return n;
}

/**
 * Files inbound messages into inboxes. Filings of one tenant that arrive while another
 * batch of that tenant is being committed wait and are committed together: one lock, one
 * transaction and one round of appends for the lot (group commit), instead of one each.
 * Every message gets an id derived from `dedupeParts` and its inbox, so the same delivery
 * arriving twice leaves one copy.
 */
export class Filer {
  private readonly batches: TenantBatches<Filing>;

  constructor(private readonly ctx: MailboxContext) {
    this.batches = new TenantBatches<Filing>({
      take: batchLength,
      commit: async (tenantId, batch) => {
        await this.commit(tenantId, batch);
        for (const f of batch) f.done();
      },
      // The event store is down, say: the same for each one, so not worth one try each.
      // (A filing decided again appends the same event: its id is derived.)
      retryAlone: (err) => !(err instanceof AppError),
      fail: (f, err) => f.done(err),
    });
  }

  async file(target: Target, facts: Filing["facts"], blobs: Buffer[], source: Filing["source"]): Promise<void> {
    // Content-addressed and idempotent: large bytes are stored first, on their own; the
    // rest go into the batch's transaction, one statement for all of them.
    const small: Buffer[] = [];
    for (const data of blobs) {
      if (data.length > INLINE_BLOB_BYTES) await putBlobs(this.ctx.db, [{ workspaceId: target.workspace_id, data }], this.ctx.clock());
      else small.push(data);
    }
    await new Promise<void>((resolve, reject) =>
      this.batches.add(target.tenant_id, { target, blobs: small, facts, source, done: (err) => (err ? reject(err) : resolve()) }),
    );
  }

  private commit(tenantId: string, batch: Filing[]): Promise<void> {
    return execute(
      this.ctx,
      tenantId,
      SYSTEM,
      async (tx) => {
        await putBlobs(tx, batch.flatMap((f) => f.blobs.map((data) => ({ workspaceId: f.target.workspace_id, data }))), this.ctx.clock());
        const ids = batch.map((f) => derivedId(...f.source.dedupeParts, f.target.inbox_id));
        const workspaces = [...new Set(batch.map((f) => f.target.workspace_id))];
        const existing = await tx.selectFrom("messages").select(["workspace_id", "message_id"]).where("workspace_id", "in", workspaces).where("message_id", "in", ids).execute();
        const seen = new Set(existing.map((r) => `${r.workspace_id}/${r.message_id}`));
        // Replies join their parent's thread: In-Reply-To first, then References from the
        // nearest; the parent may be stored already or earlier in this very batch.
        const headers = [...new Set(batch.flatMap((f) => [f.facts.inReplyTo, ...f.facts.references].filter((h): h is string => !!h)))];
        const known = new Map<string, string>(); // workspace/inbox/header → thread
        const key = (t: Pick<Target, "workspace_id" | "inbox_id">, h: string) => `${t.workspace_id}/${t.inbox_id}/${h}`;
        if (headers.length) {
          const rows = await tx
            .selectFrom("messages")
            .select(["workspace_id", "inbox_id", "message_id_header", "thread_id"])
            .where("workspace_id", "in", workspaces)
            .where("inbox_id", "in", [...new Set(batch.map((f) => f.target.inbox_id))])
            .where("message_id_header", "in", headers)
            .orderBy("created_at")
            .execute();
          for (const r of rows) if (!known.has(key(r, r.message_id_header))) known.set(key(r, r.message_id_header), r.thread_id);
        }
        const drafts = [];
        for (const [i, { target, facts, source }] of batch.entries()) {
          const messageId = ids[i]!;
          if (seen.has(`${target.workspace_id}/${messageId}`)) continue;
          seen.add(`${target.workspace_id}/${messageId}`);
          const parent = [facts.inReplyTo, ...[...facts.references].reverse()].map((h) => (h ? known.get(key(target, h)) : undefined)).find(Boolean);
          const threadId = parent ?? derivedId("thread", messageId);
          if (!known.has(key(target, facts.messageIdHeader))) known.set(key(target, facts.messageIdHeader), threadId);
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
            // Filing the same message again (a retry after a failed commit) appends the same event.
            eventId: derivedId("event", messageId, "MessageReceived"),
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
