import { sql } from "kysely";
import { z } from "zod";
import type { RpcServer } from "@mam/bus/rpc.ts";
import { operatorSubject, resolveWithIdentity, serveOperator } from "@mam/service-kit/operator-rpc.ts";
import type { MailboxContext } from "../context.ts";

/** `mam status`: the outbound delivery queue (recipients waiting for another try) and the failure notices owed, which live in the database, not in a stream. */
export const DELIVERY_QUEUE_SUBJECT = operatorSubject("mailbox", "delivery", "queue");

/** The mailbox's operator requests (see operator-rpc.ts). */
export function registerOperatorRpc(rpc: RpcServer, ctx: MailboxContext): void {
  serveOperator(rpc, DELIVERY_QUEUE_SUBJECT, z.object({}), resolveWithIdentity(ctx.bus), async () => {
    const row = await sql<{ messages: string; due: string; trying: string; oldest: Date | null; attempts: number | null }>`
      select count(*) as messages,
             count(*) filter (where next_try_at <= now()) as due,
             count(*) filter (where lease is not null) as trying,
             min(next_try_at) as oldest,
             max(attempts) as attempts
      from delivery_queue`.execute(ctx.db);
    const r = row.rows[0]!;
    // The delivery status notifications owed to senders (see failure-notices.ts): settled ones are only kept, not waiting.
    const notices = await sql<{ waiting: string; due: string; trying: string; oldest: Date | null }>`
      select count(*) as waiting,
             count(*) filter (where next_try_at <= now()) as due,
             count(*) filter (where lease is not null) as trying,
             min(next_try_at) as oldest
      from failure_notices where settled_at is null`.execute(ctx.db);
    const n = notices.rows[0]!;
    return {
      status: 200,
      body: {
        messages: Number(r.messages),
        due: Number(r.due),
        trying: Number(r.trying),
        nextTryAt: r.oldest ? new Date(r.oldest).toISOString() : null,
        maxAttempts: r.attempts ?? 0,
        failureNotices: {
          waiting: Number(n.waiting),
          due: Number(n.due),
          trying: Number(n.trying),
          nextTryAt: n.oldest ? new Date(n.oldest).toISOString() : null,
        },
      },
    };
  });
}
