import { ZodError } from "zod";
import { sql } from "kysely";
import { DurableConsumer } from "@mam/bus/consumer.ts";
import { contextEventsFilter } from "@mam/contracts/envelope.ts";
import { MAILBOX_CONTEXT, parseMailboxEvent, type MailboxEnvelope } from "@mam/contracts/mailbox-events.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import type { MailboxContext } from "../context.ts";
import { groupCommit, type CommandMeta } from "../commands/execute.ts";
import { getBlobs } from "../store/blobs.ts";
import { Filer, type Target } from "./receive.ts";
import type { Unrecorded } from "../db/schema.ts";
import { derivedId } from "./ids.ts";
import type { Outbound, Refusal } from "./outbound.ts";

export const DELIVERY_DURABLE = "mailbox-delivery";
const SYSTEM: CommandMeta = { actor: { type: "system", id: "delivery" }, requestId: "delivery" };

type Sent = Extract<MailboxEnvelope, { type: "MessageSent" }>;

/** Local copies at a time for one sent message: each holds the message's bytes until filed. */
const LOCAL_COPIES_IN_FLIGHT = 4;

/** Copies for inboxes of this platform, with no SMTP round trip; the bytes are read once. */
async function deliverLocally(ctx: MailboxContext, filer: Filer, e: Sent, targets: Target[]) {
  if (!targets.length) return;
  const f = e.data;
  const hashes = [f.rawHash, f.plainHash, f.htmlHash, ...f.attachments.map((a) => a.hash)].filter((h): h is string => !!h);
  const blobs = [...(await getBlobs(ctx.db, e.workspaceId!, hashes)).values()];
  const { messageId: _m, inboxId: _i, threadId: _t, ...facts } = f;
  const queue = [...targets];
  await Promise.all(
    Array.from({ length: Math.min(LOCAL_COPIES_IN_FLIGHT, queue.length) }, async () => {
      for (let target = queue.shift(); target; target = queue.shift()) {
        // Within the sender's workspace the bytes are stored already.
        const copy = target.workspace_id === e.workspaceId ? [] : blobs;
        await filer.file(target, facts, copy, { dedupeParts: ["local", f.messageId], sourceMessageId: f.messageId });
      }
    }),
  );
}

type Records = ReturnType<typeof groupCommit>;

/** The sent message a delivery step is about. */
interface SentRef {
  tenantId: string;
  workspaceId: string;
  messageId: string;
  from: string;
  recipients: string[];
  rawHash: string;
  sentAt: string;
}

const refOf = (e: Sent): SentRef => ({
  tenantId: e.tenantId!,
  workspaceId: e.workspaceId!,
  messageId: e.data.messageId,
  from: e.data.from.address,
  recipients: [...new Set([...e.data.to, ...e.data.cc, ...e.data.bcc].map((r) => r.toLowerCase()))],
  rawHash: e.data.rawHash,
  sentAt: e.occurredAt,
});

/**
 * Records what became of some recipients, through group commit (a burst of sends makes a
 * burst of these). The event id is derived from its content, and a failure is retried in
 * place a few times: once a server said 250, losing the record would mean sending again.
 */
async function record(ctx: MailboxContext, records: Records, m: SentRef, type: "MessageDelivered" | "MessageBounced", data: { recipients: string[]; via?: string; reason?: string }) {
  const eventId = derivedId("event", m.messageId, type, ...[...data.recipients].sort());
  for (const pause of [200, 1_000, 3_000, 0]) {
    try {
      await records.run(m.tenantId, SYSTEM, async (tx) => {
        const current = await tx.selectFrom("messages").select("version").where("workspace_id", "=", m.workspaceId).where("message_id", "=", m.messageId).executeTakeFirst();
        return {
          events: [
            {
              event: { type, schemaVersion: 1, data: { messageId: m.messageId, ...data } } as never,
              eventId,
              tenantId: m.tenantId,
              workspaceId: m.workspaceId,
              aggregateId: m.messageId,
              aggregateVersion: (current?.version ?? 1) + 1,
            },
          ],
          result: undefined,
        };
      });
      return;
    } catch (err) {
      if (!pause) throw err;
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}

/** Recipients of the message with no outcome yet (recorded or waiting to be); none when it was settled before outcomes were kept. */
async function pendingOf(ctx: MailboxContext, m: SentRef, status: string, unrecorded: Unrecorded[] = []): Promise<string[]> {
  const done = new Set(
    (await ctx.db.selectFrom("delivery_outcomes").select("recipient").where("workspace_id", "=", m.workspaceId).where("message_id", "=", m.messageId).execute()).map((r) => r.recipient),
  );
  if (status !== "sent" && !done.size && !unrecorded.length) return [];
  for (const u of unrecorded) for (const r of u.recipients) done.add(r);
  return m.recipients.filter((r) => !done.has(r));
}

/** Records outcomes; those that cannot be recorded now (the event store is down) are handed back. */
async function recordAll(ctx: MailboxContext, records: Records, m: SentRef, outcomes: Unrecorded[]): Promise<Unrecorded[]> {
  const left: Unrecorded[] = [];
  for (const o of outcomes) {
    const { type, ...data } = o;
    try {
      await record(ctx, records, m, type, data);
    } catch (err) {
      ctx.logger.warn({ err, messageId: m.messageId, type }, "could not record a delivery outcome yet; kept to record later");
      left.push(o);
    }
  }
  return left;
}

interface Try {
  deferred: Refusal[];
  /** Outcomes the servers gave that are not recorded yet: never to be sent again. */
  unrecorded: Unrecorded[];
}

/** Offers the message to the relay or the recipients' MX and records each outcome. */
async function sendOut(ctx: MailboxContext, records: Records, outbound: Outbound, m: SentRef, external: string[]): Promise<Try> {
  const raw = (await getBlobs(ctx.db, m.workspaceId, [m.rawHash])).get(m.rawHash);
  if (!raw) throw new Error(`raw bytes of message ${m.messageId} missing`);
  const r = await outbound.send(m.from, external, raw);
  const outcomes: Unrecorded[] = [
    ...(r.delivered.length ? [{ type: "MessageDelivered" as const, recipients: r.delivered, via: ctx.cfg.SMTP_RELAY_URL ? "relay" : "mx" }] : []),
    ...r.rejected.map((b) => ({ type: "MessageBounced" as const, recipients: b.recipients, reason: b.reason.slice(0, 1000) })),
  ];
  return { deferred: r.deferred, unrecorded: await recordAll(ctx, records, m, outcomes) };
}

/**
 * What is left after a try: nothing (the row goes), a bounce of the deferred when the
 * message is too old to keep trying, or the next look in the queue. With a lease, only the
 * holder of the lease may change the row.
 */
async function settle(ctx: MailboxContext, records: Records, m: SentRef, t: Try, attempts: number, lease: string | null): Promise<void> {
  let { deferred, unrecorded } = t;
  const ageS = (ctx.clock().getTime() - Date.parse(m.sentAt)) / 1000;
  if (deferred.length && ageS >= ctx.cfg.DELIVERY_GIVE_UP_AFTER_S) {
    const bounces = deferred.map((d) => ({
      type: "MessageBounced" as const,
      recipients: d.recipients,
      reason: `gave up after ${attempts} attempts over ${Math.round(ageS / 60)} min: ${d.reason}`.slice(0, 1000),
    }));
    unrecorded = [...unrecorded, ...(await recordAll(ctx, records, m, bounces))];
    deferred = [];
  }
  if (!deferred.length && !unrecorded.length) {
    const row = ctx.db.deleteFrom("delivery_queue").where("workspace_id", "=", m.workspaceId).where("message_id", "=", m.messageId);
    await (lease ? row.where("lease", "=", lease) : row.where("lease", "is", null)).execute();
    return;
  }
  const delays = ctx.cfg.DELIVERY_RETRY_DELAYS_S;
  // Only outcomes to record: look again soon. Computed by the database's clock, as the lease is.
  const waitS = deferred.length ? delays[Math.min(attempts - 1, delays.length - 1)]! : 10;
  const next = sql<Date>`now() + make_interval(secs => ${waitS})`;
  const lastError = (deferred.map((d) => d.reason).join("; ") || "outcomes not recorded yet").slice(0, 1000);
  const json = JSON.stringify(unrecorded);
  if (lease) {
    // The holder read the row's outcomes and settles them all; without the lease (it ran
    // out, another replica has the row) nothing is written, and a deleted row stays deleted.
    await ctx.db
      .updateTable("delivery_queue")
      .set({ attempts, next_try_at: next, last_error: lastError, lease: null, unrecorded: json })
      .where("workspace_id", "=", m.workspaceId)
      .where("message_id", "=", m.messageId)
      .where("lease", "=", lease)
      .execute();
    return;
  }
  await ctx.db
    .insertInto("delivery_queue")
    .values({ workspace_id: m.workspaceId, message_id: m.messageId, tenant_id: m.tenantId, attempts, next_try_at: next, last_error: lastError, lease: null, unrecorded: json })
    // A first pass meeting a row (another first pass of the same event) only adds the
    // outcomes it could not record: the row's own schedule and holder stay.
    .onConflict((oc) => oc.columns(["workspace_id", "message_id"]).doUpdateSet({ unrecorded: sql<string>`delivery_queue.unrecorded || excluded.unrecorded` }))
    .execute();
}

/**
 * Delivers each sent message: locally where the address is ours, through Outbound elsewhere.
 * Each recipient's outcome is recorded as it is known; recipients refused for now wait in
 * the retry queue (the event is acknowledged), so a retry goes only to them, and a domain
 * that is down holds up nobody else's mail.
 */
async function deliver(ctx: MailboxContext, filer: Filer, records: Records, outbound: Outbound, e: Sent): Promise<void> {
  const m = refOf(e);
  const mine = await ctx.db.selectFrom("messages").select(["status"]).where("workspace_id", "=", m.workspaceId).where("message_id", "=", m.messageId).executeTakeFirst();
  // Not committed yet by the command that sent it: throwing makes the consumer try again shortly.
  if (!mine) throw new Error(`message ${m.messageId} not visible yet`);
  // Already in the retry queue (this event is being delivered again): the queue drives it.
  const queued = await ctx.db.selectFrom("delivery_queue").select("attempts").where("workspace_id", "=", m.workspaceId).where("message_id", "=", m.messageId).executeTakeFirst();
  if (queued) return;
  const pending = await pendingOf(ctx, m, mine.status);
  if (!pending.length) return;

  const claims = await ctx.db.selectFrom("address_claims").selectAll().where("address", "in", pending).execute();
  if (claims.length) {
    await deliverLocally(ctx, filer, e, [...new Map(claims.map((c) => [c.inbox_id, c])).values()]);
    await record(ctx, records, m, "MessageDelivered", { recipients: claims.map((c) => c.address), via: "local" });
  }
  const external = pending.filter((r) => !claims.some((c) => c.address === r));
  if (!external.length) return;
  await settle(ctx, records, m, await sendOut(ctx, records, outbound, m, external), 1, null);
}

/** Rows of the retry queue worked on at once by one replica. */
const RETRIES_IN_FLIGHT = 20;
/** How long a leased row is this replica's: longer than any one try can take (see Outbound's timeouts). */
const LEASE = "30 minutes";
const RENEW_EVERY_MS = 5 * 60_000;

type QueueRow = { workspace_id: string; message_id: string; tenant_id: string; attempts: number; lease: string; unrecorded: Unrecorded[] };

/**
 * Tries again the recipients waiting in the queue once their time has come, and records the
 * outcomes left unrecorded. A due row is leased (a token, and its next look pushed past any
 * try) before it is worked on, so replicas share the queue, a crash mid-try only delays that
 * message, and only the lease holder settles it. Each row runs on its own: a slow server
 * delays only its message.
 */
export class RetryQueue {
  private timer?: NodeJS.Timeout;
  private readonly working = new Set<Promise<void>>();
  private leasing = false;
  private ticking: Promise<void> = Promise.resolve();
  private stopped = false;
  private lastFailureLog = 0;

  constructor(
    private readonly ctx: MailboxContext,
    private readonly records: Records,
    private readonly outbound: Outbound,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (!this.leasing) this.ticking = this.tick();
    }, this.ctx.cfg.DELIVERY_RETRY_POLL_MS);
  }

  /** Takes no more rows; waits a little for the tries in flight (their leases cover the rest). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await Promise.race([this.ticking, new Promise((r) => setTimeout(r, 5_000).unref())]);
    await Promise.race([Promise.all([...this.working]), new Promise((r) => setTimeout(r, 5_000).unref())]);
  }

  private async tick(): Promise<void> {
    const free = RETRIES_IN_FLIGHT - this.working.size;
    if (this.stopped || this.leasing || free <= 0) return;
    this.leasing = true;
    try {
      const due = await sql<QueueRow>`
        update delivery_queue set next_try_at = now() + ${sql.raw(`interval '${LEASE}'`)}, lease = gen_random_uuid()
        where (workspace_id, message_id) in (
          select workspace_id, message_id from delivery_queue where next_try_at <= now() order by next_try_at limit ${free} for update skip locked
        )
        returning workspace_id, message_id, tenant_id, attempts, lease, unrecorded`.execute(this.ctx.db);
      if (this.stopped) {
        // Stopped while leasing: hand the rows back at once rather than hold them for the lease.
        for (const row of due.rows) {
          await this.ctx.db.updateTable("delivery_queue").set({ next_try_at: sql<Date>`now()`, lease: null }).where("workspace_id", "=", row.workspace_id).where("message_id", "=", row.message_id).where("lease", "=", row.lease).execute();
        }
        return;
      }
      for (const row of due.rows) {
        // A long conversation keeps its lease (a tarpit answers just often enough).
        const renew = setInterval(() => {
          void sql`update delivery_queue set next_try_at = now() + ${sql.raw(`interval '${LEASE}'`)} where workspace_id = ${row.workspace_id} and message_id = ${row.message_id} and lease = ${row.lease}`
            .execute(this.ctx.db)
            .catch(() => undefined);
        }, RENEW_EVERY_MS);
        const p: Promise<void> = this.retry(row)
          .catch((err: unknown) => this.failed(row, err))
          .finally(() => {
            clearInterval(renew);
            this.working.delete(p);
          });
        this.working.add(p);
      }
    } catch (err) {
      // The database is down, say: said once in a while, not every second.
      if (Date.now() - this.lastFailureLog > 30_000) {
        this.lastFailureLog = Date.now();
        this.ctx.logger.warn({ err }, "delivery retries: cannot read the queue; trying again shortly");
      }
    } finally {
      this.leasing = false;
    }
  }

  /**
   * A try that failed on our side (not the server's): looked at again in a minute, not when
   * the lease runs out, and counted; one that keeps failing past the give-up age leaves the
   * queue (logged as an error: the message needs a person).
   */
  private async failed(row: QueueRow, err: unknown): Promise<void> {
    const { ctx } = this;
    const message = String((err as Error)?.message ?? err).slice(0, 1000);
    const aged = await sql<{ old: boolean }>`
      select m.created_at < now() - make_interval(secs => ${ctx.cfg.DELIVERY_GIVE_UP_AFTER_S}) as old
      from messages m where m.workspace_id = ${row.workspace_id} and m.message_id = ${row.message_id}`
      .execute(ctx.db)
      .then((r) => r.rows[0]?.old ?? true, () => false);
    if (aged) {
      ctx.logger.error({ err, messageId: row.message_id, attempts: row.attempts }, "delivery retry keeps failing past the give-up age; removed from the queue");
      await ctx.db.deleteFrom("delivery_queue").where("workspace_id", "=", row.workspace_id).where("message_id", "=", row.message_id).where("lease", "=", row.lease).execute().catch(() => undefined);
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

  private async retry(row: QueueRow): Promise<void> {
    const { ctx } = this;
    const msg = await ctx.db
      .selectFrom("messages")
      .select(["status", "from_address", "to_addresses", "cc_addresses", "bcc_addresses", "raw_hash", "created_at"])
      .where("workspace_id", "=", row.workspace_id)
      .where("message_id", "=", row.message_id)
      .executeTakeFirst();
    if (!msg) {
      await ctx.db.deleteFrom("delivery_queue").where("workspace_id", "=", row.workspace_id).where("message_id", "=", row.message_id).where("lease", "=", row.lease).execute();
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
    const pending = await pendingOf(ctx, m, msg.status, unrecorded);
    const t = pending.length ? await sendOut(ctx, this.records, this.outbound, m, pending) : { deferred: [], unrecorded: [] };
    await settle(ctx, this.records, m, { deferred: t.deferred, unrecorded: [...unrecorded, ...t.unrecorded] }, pending.length ? row.attempts + 1 : row.attempts, row.lease);
  }
}

export function deliveryWorker(ctx: MailboxContext, backbone: Backbone<any>, outbound: Outbound): { consumer: DurableConsumer; retries: RetryQueue } {
  const filer = new Filer(ctx);
  const records = groupCommit(ctx);
  const retries = new RetryQueue(ctx, records, outbound);
  const consumer = new DurableConsumer({
    bus: backbone.bus,
    stream: backbone.stream,
    durable: DELIVERY_DURABLE,
    filterSubject: contextEventsFilter(ctx.bus.prefix, MAILBOX_CONTEXT),
    logger: ctx.logger,
    isPoison: (err) => err instanceof ZodError,
    // Each sent message is delivered on its own: a tenant's burst goes out in parallel (and
    // its local copies and records group-commit) instead of one message after another.
    keyOf: (msg) => String(msg.seq % 32),
    concurrency: 32,
    // A first pass includes an SMTP conversation: minutes, not seconds, before another
    // replica may take the event over (the heartbeat covers the ones being handled).
    ackWaitMs: 5 * 60_000,
    handle: async (msg) => {
      if (!msg.subject.endsWith(".MessageSent")) return;
      const e = parseMailboxEvent(msg.json());
      if (e.type === "MessageSent") await deliver(ctx, filer, records, outbound, e);
    },
  });
  return { consumer, retries };
}
