import { sql } from "kysely";
import type { IngestMeta } from "@mam/contracts/ingest.ts";
import type { Authentication } from "@mam/contracts/message-events.ts";
import { metricsOf } from "@mam/runtime/metrics.ts";
import type { MailboxContext } from "../context.ts";
import { platformDkim } from "../commands/dkim-keys.ts";
import { failureNotice } from "../mime/failure-notice.ts";
import { derivedId } from "./ids.ts";
import { INBOX_GONE_REASON } from "./receive.ts";
import type { Outbound } from "./outbound.ts";
import { LEASE, LeasePoller, type LeasedWork } from "./lease-poller.ts";

/** Notices sent at once by one replica. */
const NOTICES_IN_FLIGHT = 8;

export type NoticeOwed = "queued" | "forged sender" | "null sender";

/** Why a sender is owed no notice, as the log says it. */
export const NO_NOTICE: Record<Exclude<NoticeOwed, "queued">, string> = {
  "forged sender": "no failure notice: SPF fails for the sender's domain",
  "null sender": "no failure notice: the mail came from the null reverse path",
};

type NoticeOutcome = "queued" | "delivered" | "refused" | "given_up";

const notices = () =>
  metricsOf("mailbox").counter(
    "mam_failure_notices_total",
    "Delivery status notifications for mail accepted over SMTP for an inbox that was gone: queued, delivered to the sender's server, refused by it (dropped), given up (past DELIVERY_GIVE_UP_AFTER_S)",
    ["outcome"],
  );

const count = (outcome: NoticeOutcome) => notices().inc({ outcome });

/**
 * The accepted message `meta` could not be filed for the addresses `failed` (their inbox was
 * deleted, or its workspace ended, after smtp-ingress answered 250 for them): its sender is
 * owed a delivery status notification (RFC 5321 6.1), queued here to be sent. None for a
 * sender whose domain's SPF says the client may not send for it (`spf`, the message's verdict):
 * the address is forged, and the notice would go to someone who sent nothing (backscatter).
 * None for mail from the null reverse path: a notice about a notice could loop. One notice per
 * accepted message: its id is derived from the message's dedupe key, so a redelivery queues
 * nothing more (its row is kept a week after the notice went: see FailureNotices).
 */
export async function oweFailureNotice(ctx: MailboxContext, meta: IngestMeta, raw: Buffer, failed: string[], spf: Authentication["spf"]): Promise<NoticeOwed> {
  if (spf === "fail") return "forged sender";
  if (meta.mailFrom === null) return "null sender";
  const noticeId = derivedId("failure-notice", meta.dedupeKey);
  const notice = await failureNotice({
    mailDomain: ctx.cfg.MAIL_DOMAIN,
    reportingMta: ctx.cfg.SMTP_HELO_NAME ?? ctx.cfg.MAIL_DOMAIN,
    to: meta.mailFrom,
    noticeId,
    queueId: meta.queueId,
    arrivedAt: new Date(meta.receivedAt),
    date: ctx.clock(),
    recipients: failed.map((address) => ({ address, status: "5.1.1", diagnostic: INBOX_GONE_REASON })),
    original: raw,
    dkim: await platformDkim(ctx, ctx.db),
  });
  const { numInsertedOrUpdatedRows } = await ctx.db
    .insertInto("failure_notices")
    .values({ notice_id: noticeId, queue_id: meta.queueId, recipient: meta.mailFrom, raw: notice, created_at: ctx.clock(), next_try_at: sql<Date>`now()` })
    .onConflict((oc) => oc.column("notice_id").doNothing())
    .executeTakeFirst();
  if (numInsertedOrUpdatedRows) count("queued");
  return "queued";
}

type NoticeRow = { notice_id: string; queue_id: string; recipient: string; raw: Buffer; attempts: number; lease: string; created_at: Date };

/** A settled notice (its bytes dropped) is kept this long: the same message handled again meanwhile owes nothing more. */
const SETTLED_KEPT = sql.raw("interval '7 days'");
/** How often a replica removes the settled notices past that age. */
const PRUNE_EVERY_MS = 10 * 60_000;

/**
 * Sends the notices owed, from the null reverse path, the way sent mail leaves (the relay, or
 * the recipient domain's MX). A due notice is leased before it is sent (see LeasePoller), so
 * replicas share the queue and a crash mid-try only delays it. A notice the sender's server
 * refuses is dropped (nothing is owed about a notice); one it defers is tried again on
 * DELIVERY_RETRY_DELAYS_S until DELIVERY_GIVE_UP_AFTER_S. Delivered, refused or given up, it
 * is settled: kept a week without its bytes, so that a redelivered message queues no second
 * notice. (Sent, but its settling lost, a notice is sent again once its lease ends: at least once.)
 */
export class FailureNotices implements LeasedWork<NoticeRow> {
  private readonly poller: LeasePoller<NoticeRow>;
  private prunedAt = 0;

  constructor(
    private readonly ctx: MailboxContext,
    private readonly outbound: Outbound,
  ) {
    this.poller = new LeasePoller(ctx, { what: "failure notices", pollMs: ctx.cfg.DELIVERY_RETRY_POLL_MS, inFlight: NOTICES_IN_FLIGHT }, this);
  }

  start(): void {
    // Counted from zero: a dashboard shows 0, not nothing.
    for (const outcome of ["queued", "delivered", "refused", "given_up"] as const) notices().inc({ outcome }, 0);
    this.poller.start();
  }

  stop(): Promise<void> {
    return this.poller.stop();
  }

  async lease(free: number): Promise<NoticeRow[]> {
    if (Date.now() - this.prunedAt > PRUNE_EVERY_MS) {
      this.prunedAt = Date.now();
      // A prune that fails is tried again next time; the notices owed go out meanwhile.
      await sql`delete from failure_notices where settled_at < now() - ${SETTLED_KEPT}`
        .execute(this.ctx.db)
        .catch((err: unknown) => this.ctx.logger.warn({ err }, "failure notices: could not remove the settled ones past their week; tried again later"));
    }
    const due = await sql<NoticeRow>`
      update failure_notices set next_try_at = now() + ${LEASE}, lease = gen_random_uuid()
      where notice_id in (
        select notice_id from failure_notices where settled_at is null and next_try_at <= now() order by next_try_at limit ${free} for update skip locked
      )
      returning notice_id, queue_id, recipient, raw, attempts, lease, created_at`.execute(this.ctx.db);
    return due.rows;
  }

  async release(row: NoticeRow): Promise<void> {
    await this.ctx.db
      .updateTable("failure_notices")
      .set({ next_try_at: sql<Date>`now()`, lease: null })
      .where("notice_id", "=", row.notice_id)
      .where("lease", "=", row.lease)
      .execute();
  }

  async renew(row: NoticeRow): Promise<void> {
    await sql`update failure_notices set next_try_at = now() + ${LEASE} where notice_id = ${row.notice_id} and lease = ${row.lease}`.execute(this.ctx.db);
  }

  about(row: NoticeRow): Record<string, unknown> {
    return { queueId: row.queue_id, to: row.recipient };
  }

  /**
   * One try. Outbound says what became of the recipient and never throws for it; anything
   * thrown while recording that is left to the lease (the poller logs it).
   */
  async work(row: NoticeRow): Promise<void> {
    const about = { queueId: row.queue_id, to: row.recipient };
    const r = await this.outbound.send("", [row.recipient], row.raw);
    if (r.delivered.length) {
      await this.settle(row, null);
      count("delivered");
      this.ctx.logger.info(about, "failure notice delivered");
    } else if (r.rejected.length) {
      const reason = r.rejected.map((d) => d.reason).join("; ");
      await this.settle(row, reason);
      count("refused");
      this.ctx.logger.warn({ ...about, reason }, "failure notice refused by the sender's server; dropped");
    } else await this.later(row, r.deferred.map((d) => d.reason).join("; ") || "deferred");
  }

  /** No longer tried: its bytes dropped, the row kept (see SETTLED_KEPT). Only the lease holder settles it. */
  private async settle(row: NoticeRow, reason: string | null): Promise<void> {
    await this.ctx.db
      .updateTable("failure_notices")
      .set({ settled_at: sql<Date>`now()`, raw: Buffer.alloc(0), lease: null, last_error: reason?.slice(0, 1000) ?? null })
      .where("notice_id", "=", row.notice_id)
      .where("lease", "=", row.lease)
      .execute();
  }

  /** Deferred: the next try on the retry schedule, or given up past the give-up age. */
  private async later(row: NoticeRow, reason: string): Promise<void> {
    const { ctx } = this;
    const ageS = (ctx.clock().getTime() - new Date(row.created_at).getTime()) / 1000;
    if (ageS >= ctx.cfg.DELIVERY_GIVE_UP_AFTER_S) {
      await this.settle(row, reason);
      count("given_up");
      ctx.logger.warn({ queueId: row.queue_id, to: row.recipient, attempts: row.attempts + 1, reason }, "failure notice given up");
      return;
    }
    const delays = ctx.cfg.DELIVERY_RETRY_DELAYS_S;
    const waitS = delays[Math.min(row.attempts, delays.length - 1)]!;
    await ctx.db
      .updateTable("failure_notices")
      .set({ attempts: row.attempts + 1, next_try_at: sql<Date>`now() + make_interval(secs => ${waitS})`, lease: null, last_error: reason.slice(0, 1000) })
      .where("notice_id", "=", row.notice_id)
      .where("lease", "=", row.lease)
      .execute();
    ctx.logger.info({ queueId: row.queue_id, to: row.recipient, attempts: row.attempts + 1, nextTryInS: waitS, reason }, "failure notice deferred");
  }
}
