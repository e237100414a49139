import { sql } from "kysely";
import { withLogContext } from "@mam/runtime/log-context.ts";
import type { MailboxContext } from "../context.ts";
import { readModelRebuilding } from "../read/rebuilding.ts";
import type { Unrecorded } from "../db/schema.ts";
import type { Outbound } from "./outbound.ts";
import { LEASE, LeasePoller, type LeasedWork } from "./lease-poller.ts";
import { bounceUnclaimedOfOurs, pendingOf, recordAll, sendOut, settle, type Records, type SentRef } from "./outcomes.ts";

/** Rows of the retry queue worked on at once by one replica. */
const RETRIES_IN_FLIGHT = 20;

type QueueRow = { workspace_id: string; message_id: string; tenant_id: string; attempts: number; lease: string; unrecorded: Unrecorded[] };

/**
 * Tries again the recipients waiting in the queue once their time has come, and records the
 * outcomes left unrecorded. A due row is leased (a token, and its next look pushed past any
 * try) before it is worked on, so replicas share the queue, a crash mid-try only delays that
 * message, and only the lease holder settles it. Each row runs on its own: a slow server
 * delays only its message.
 *
 * While the read model is rebuilt (`mam rebuild mailbox`) it holds a partial history: a
 * message not replayed yet would look gone (its row deleted: mail dropped), one replayed
 * without its outcomes would look undelivered (sent twice). So nothing is leased then, and
 * a try already under way hands its row back rather than act on what it read.
 */
export class RetryQueue implements LeasedWork<QueueRow> {
  private readonly poller: LeasePoller<QueueRow>;

  constructor(
    private readonly ctx: MailboxContext,
    private readonly records: Records,
    private readonly outbound: Outbound,
  ) {
    this.poller = new LeasePoller(ctx, { what: "delivery retries", pollMs: ctx.cfg.DELIVERY_RETRY_POLL_MS, inFlight: RETRIES_IN_FLIGHT }, this);
  }

  start(): void {
    this.poller.start();
  }

  stop(): Promise<void> {
    return this.poller.stop();
  }

  async lease(free: number): Promise<QueueRow[]> {
    if (await readModelRebuilding(this.ctx)) return [];
    const due = await sql<QueueRow>`
      update delivery_queue set next_try_at = now() + ${LEASE}, lease = gen_random_uuid()
      where (workspace_id, message_id) in (
        select workspace_id, message_id from delivery_queue where next_try_at <= now() order by next_try_at limit ${free} for update skip locked
      )
      returning workspace_id, message_id, tenant_id, attempts, lease, unrecorded`.execute(this.ctx.db);
    return due.rows;
  }

  async release(row: QueueRow): Promise<void> {
    await this.ctx.db
      .updateTable("delivery_queue")
      .set({ next_try_at: sql<Date>`now()`, lease: null })
      .where("workspace_id", "=", row.workspace_id)
      .where("message_id", "=", row.message_id)
      .where("lease", "=", row.lease)
      .execute();
  }

  async renew(row: QueueRow): Promise<void> {
    await sql`update delivery_queue set next_try_at = now() + ${LEASE} where workspace_id = ${row.workspace_id} and message_id = ${row.message_id} and lease = ${row.lease}`.execute(
      this.ctx.db,
    );
  }

  about(row: QueueRow): Record<string, unknown> {
    return { messageId: row.message_id };
  }

  /** Every line of this try (the SMTP conversation, the records) names the message. */
  work(row: QueueRow): Promise<void> {
    return withLogContext({ messageId: row.message_id }, () => this.retry(row).catch((err: unknown) => this.failed(row, err)));
  }

  /**
   * A try that failed on our side (not the server's): looked at again in a minute, not when
   * the lease runs out, and counted; one that keeps failing past the give-up age leaves the
   * queue (logged as an error: the message needs a person).
   */
  private async failed(row: QueueRow, err: unknown): Promise<void> {
    const { ctx } = this;
    // A message missing from a read model being rebuilt is not replayed yet: not old, not gone.
    if (await readModelRebuilding(ctx).catch(() => true)) return this.handBack(row);
    const message = String((err as Error)?.message ?? err).slice(0, 1000);
    const aged = await sql<{ old: boolean }>`
      select m.created_at < now() - make_interval(secs => ${ctx.cfg.DELIVERY_GIVE_UP_AFTER_S}) as old
      from messages m where m.workspace_id = ${row.workspace_id} and m.message_id = ${row.message_id}`
      .execute(ctx.db)
      .then(
        (r) => r.rows[0]?.old ?? true,
        () => false,
      );
    if (aged) {
      ctx.logger.error({ err, messageId: row.message_id, attempts: row.attempts }, "delivery retry keeps failing past the give-up age; removed from the queue");
      await ctx.db
        .deleteFrom("delivery_queue")
        .where("workspace_id", "=", row.workspace_id)
        .where("message_id", "=", row.message_id)
        .where("lease", "=", row.lease)
        .execute()
        .catch(() => undefined);
      return;
    }
    ctx.logger.warn({ err, messageId: row.message_id }, "delivery retry failed; trying again in a minute");
    await ctx.db
      .updateTable("delivery_queue")
      .set({ next_try_at: sql<Date>`now() + interval '60 seconds'`, lease: null, last_error: message, attempts: row.attempts + 1 })
      .where("workspace_id", "=", row.workspace_id)
      .where("message_id", "=", row.message_id)
      .where("lease", "=", row.lease)
      .execute()
      .catch(() => undefined);
  }

  /** The row given back untouched, looked at again in half a minute (a rebuild began since it was leased). */
  private async handBack(row: QueueRow): Promise<void> {
    this.ctx.logger.info({ messageId: row.message_id }, "delivery retry put off: the read model is being rebuilt");
    await this.ctx.db
      .updateTable("delivery_queue")
      .set({ next_try_at: sql<Date>`now() + interval '30 seconds'`, lease: null })
      .where("workspace_id", "=", row.workspace_id)
      .where("message_id", "=", row.message_id)
      .where("lease", "=", row.lease)
      .execute()
      .catch(() => undefined);
  }

  private async retry(row: QueueRow): Promise<void> {
    const { ctx } = this;
    if (await readModelRebuilding(ctx)) return this.handBack(row);
    const msg = await ctx.db
      .selectFrom("messages")
      .select(["status", "from_address", "to_addresses", "cc_addresses", "bcc_addresses", "raw_hash", "created_at"])
      .where("workspace_id", "=", row.workspace_id)
      .where("message_id", "=", row.message_id)
      .executeTakeFirst();
    if (!msg) {
      // The record is read after the message: absent then, the model was whole when read.
      if (await readModelRebuilding(ctx)) return this.handBack(row);
      await ctx.db
        .deleteFrom("delivery_queue")
        .where("workspace_id", "=", row.workspace_id)
        .where("message_id", "=", row.message_id)
        .where("lease", "=", row.lease)
        .execute();
      return;
    }
    const list = (v: unknown) => (Array.isArray(v) ? (v as string[]) : (JSON.parse(String(v)) as string[]));
    const m: SentRef = {
      tenantId: row.tenant_id,
      workspaceId: row.workspace_id,
      messageId: row.message_id,
      from: msg.from_address,
      recipients: [...new Set([...list(msg.to_addresses), ...list(msg.cc_addresses), ...list(msg.bcc_addresses)].map((r) => r.toLowerCase()))],
      rawHash: msg.raw_hash,
      sentAt: new Date(msg.created_at).toISOString(),
    };
    // First what servers already said: those recipients are never offered the message again.
    const unrecorded = await recordAll(ctx, this.records, m, row.unrecorded);
    // Queued for the world; one of the platform's own addresses (queued by an earlier release) bounces instead.
    const pending = await bounceUnclaimedOfOurs(ctx, this.records, m, await pendingOf(ctx, m, msg.status, unrecorded));
    // A rebuild begun since the first look may have emptied what pendingOf read: every
    // recipient would look pending. Read after it, no record means its reads saw the whole model.
    if (pending.length && (await readModelRebuilding(ctx))) return this.handBack(row);
    const t = pending.length ? await sendOut(ctx, this.records, this.outbound, m, pending) : { deferred: [], unrecorded: [] };
    await settle(
      ctx,
      this.records,
      m,
      { deferred: t.deferred, unrecorded: [...unrecorded, ...t.unrecorded] },
      pending.length ? row.attempts + 1 : row.attempts,
      row.lease,
    );
  }
}
