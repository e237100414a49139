import { sql, type Kysely } from "kysely";
import type { JsMsg } from "@nats-io/jetstream";
import { ZodError } from "zod";
import { BILLING_CONTEXT, parseBillingEvent, type BillingEnvelope } from "@mam/contracts/billing-events.ts";
import { eventSubject } from "@mam/contracts/envelope.ts";
import { AppError, limitReached } from "@mam/contracts/errors.ts";
import type { MailboxEnvelope } from "@mam/contracts/mailbox-events.ts";
import { MAILBOX_CONTEXT } from "@mam/contracts/mailbox-events.ts";
import { applyConsumed, applyOnce, type Sequenced } from "@mam/service-kit/event-sourcing.ts";
import type { ProjectionSpec } from "@mam/service-kit/projection.ts";
import type { MailboxDb } from "../db/schema.ts";

type Tx = Kysely<MailboxDb>;
export type LimitKind = "inboxes" | "domains" | "emailsPerMonth";

/** The read model of billing's TenantPlanChanged (its checkpoint rows, and its durable consumer's name). */
export const PLAN_LIMITS = "mailbox-plan-limits";
/** The read model of billing's DefaultLimitsSet: the limits of a tenant billing has not reached yet (its durable consumer's name). */
export const DEFAULT_LIMITS = "mailbox-default-limits";
/** The read model of billing's TenantBillingChanged: paused tenants (its durable consumer's name). */
export const TENANT_PAUSES = "mailbox-tenant-pauses";

/** What a command's new events add to the tenant's usage: one message sent is one email, whatever its recipients. */
export function usageAdded(events: { type: string }[]): Record<LimitKind, number> {
  const added = { inboxes: 0, domains: 0, emailsPerMonth: 0 };
  for (const e of events) {
    if (e.type === "InboxCreated") added.inboxes++;
    else if (e.type === "DomainAdded") added.domains++;
    else if (e.type === "MessageSent") added.emailsPerMonth++;
  }
  return added;
}

/** The refusal when `total` (the usage with this command's additions) is beyond `max`; null otherwise. */
export function overLimit(limit: LimitKind, total: number, added: number, max: number | null) {
  if (max === null || added === 0 || total <= max) return null;
  return limitReached(`Plan limit reached: ${limit} (${total - added} of ${max} used)`, { limit, usage: total - added, max });
}

/** The first day of the UTC month of `at`, as a date. */
export const monthKey = (at: Date) => `${at.getUTCFullYear()}-${String(at.getUTCMonth() + 1).padStart(2, "0")}-01`;

/**
 * The plan's limits, checked in the command's transaction after its events were applied and
 * before they are recorded, under the tenant's lock (every mailbox command of a tenant takes
 * the same lock, whichever workspace it is about): the counts include this command's
 * additions, and a refusal rolls everything back. Every send is counted in the tenant's
 * month row, limited or not, so a limit set mid-month counts the month whole.
 */
export async function enforcePlanLimits(tx: Tx, fresh: Sequenced<MailboxEnvelope>[]): Promise<void> {
  const tenantId = fresh.find(({ e }) => e.tenantId)?.e.tenantId;
  if (!tenantId) return;
  const added = usageAdded(fresh.map(({ e }) => e));
  if (!added.inboxes && !added.domains && !added.emailsPerMonth) return;
  let limits: Limits | undefined;
  if (added.emailsPerMonth) {
    const at = new Date(fresh.find(({ e }) => e.type === "MessageSent")!.e.occurredAt);
    const sending = await countSends(tx, tenantId, monthKey(at), added.emailsPerMonth);
    // Counted before the pause is looked at, in the same statement: a refusal rolls the count back.
    if (sending.paused)
      throw new AppError(
        "INBOX_PAUSED",
        "Sending is paused for this tenant: its payment failed past the grace period, or its subscription ended; pay to resume (reading and receiving go on)",
      );
    limits = sending.limits;
    const refused = overLimit("emailsPerMonth", sending.sent, added.emailsPerMonth, limits?.emails_per_month ?? null);
    if (refused) throw refused;
  } else limits = await limitsOf(tx, tenantId);
  if (!limits) return;
  if (added.inboxes && limits.inboxes !== null) {
    const n = await countLive(tx, "inboxes", tenantId);
    const refused = overLimit("inboxes", n, added.inboxes, limits.inboxes);
    if (refused) throw refused;
  }
  if (added.domains && limits.domains !== null) {
    const n = await countLive(tx, "domains", tenantId);
    const refused = overLimit("domains", n, added.domains, limits.domains);
    if (refused) throw refused;
  }
}

type Limits = { inboxes: number | null; emails_per_month: number | null; domains: number | null };

/**
 * A send's bookkeeping in one round trip: the sends counted into the tenant's month row (the
 * count after), whether the tenant is paused, and its limits as limitsOf reads them.
 */
async function countSends(tx: Tx, tenantId: string, month: string, added: number): Promise<{ sent: number; paused: boolean; limits: Limits | undefined }> {
  const { rows } = await sql<{
    sent: number;
    paused: boolean | null;
    own: boolean;
    inboxes: number | null;
    emails_per_month: number | null;
    domains: number | null;
    plan_id: string | null;
    default_inboxes: number | null;
    default_emails_per_month: number | null;
    default_domains: number | null;
  }>`
    with counted as (
      insert into tenant_monthly_sends (tenant_id, month, sent) values (${tenantId}, ${month}, ${added})
      on conflict (tenant_id, month) do update set sent = tenant_monthly_sends.sent + ${added}
      returning sent
    )
    select c.sent, (select p.paused from tenant_pauses p where p.tenant_id = ${tenantId}) as paused,
      o.tenant_id is not null as own, o.inboxes, o.emails_per_month, o.domains,
      d.plan_id, d.inboxes as default_inboxes, d.emails_per_month as default_emails_per_month, d.domains as default_domains
    from counted c
    left join tenant_limits o on o.tenant_id = ${tenantId}
    left join default_limits d on d.id = 1`.execute(tx);
  const r = rows[0]!;
  const limits = r.own
    ? { inboxes: r.inboxes, emails_per_month: r.emails_per_month, domains: r.domains }
    : r.plan_id
      ? { inboxes: r.default_inboxes, emails_per_month: r.default_emails_per_month, domains: r.default_domains }
      : undefined;
  return { sent: Number(r.sent), paused: !!r.paused, limits };
}

/**
 * The tenant's limits: its own as billing told them, else the default plan's (a tenant made
 * moments ago, before billing put it on the default plan), else none (nothing limited).
 */
export async function limitsOf(tx: Tx, tenantId: string) {
  const own = await tx.selectFrom("tenant_limits").select(["inboxes", "emails_per_month", "domains"]).where("tenant_id", "=", tenantId).executeTakeFirst();
  if (own) return own;
  const fallback = await tx.selectFrom("default_limits").select(["plan_id", "inboxes", "emails_per_month", "domains"]).where("id", "=", 1).executeTakeFirst();
  return fallback?.plan_id ? { inboxes: fallback.inboxes, emails_per_month: fallback.emails_per_month, domains: fallback.domains } : undefined;
}

async function countLive(tx: Tx, table: "inboxes" | "domains", tenantId: string): Promise<number> {
  const r = await tx
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<string>().as("n"))
    .where("tenant_id", "=", tenantId)
    .where("deleted_at", "is", null)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Keeps `tenant_limits` from billing's TenantPlanChanged, each once, a newer version over an older, under the tenant's lock. */
export function planLimitsProjection(db: Tx): ProjectionSpec {
  return {
    name: PLAN_LIMITS,
    filterSubject: (prefix) => eventSubject(prefix, { context: BILLING_CONTEXT, tenantId: "*", workspaceId: "*", type: "TenantPlanChanged" }),
    isPoison: (err) => err instanceof ZodError,
    handle: async (msg: JsMsg) => {
      const e = parseBillingEvent(msg.json());
      await applyConsumed(db, MAILBOX_CONTEXT, e, (tx) => applyOnce(tx, PLAN_LIMITS, e, msg.seq, () => applyPlan(tx, e)));
    },
  };
}

/** Keeps `tenant_pauses` from billing's TenantBillingChanged, each once, a newer version over an older. */
export function tenantPausesProjection(db: Tx): ProjectionSpec {
  return {
    name: TENANT_PAUSES,
    filterSubject: (prefix) => eventSubject(prefix, { context: BILLING_CONTEXT, tenantId: "*", workspaceId: "*", type: "TenantBillingChanged" }),
    isPoison: (err) => err instanceof ZodError,
    handle: async (msg: JsMsg) => {
      const e = parseBillingEvent(msg.json());
      await applyConsumed(db, MAILBOX_CONTEXT, e, (tx) => applyOnce(tx, TENANT_PAUSES, e, msg.seq, () => applyPause(tx, e)));
    },
  };
}

/** Keeps `default_limits` from billing's DefaultLimitsSet, each once, a newer version over an older. */
export function defaultLimitsProjection(db: Tx): ProjectionSpec {
  return {
    name: DEFAULT_LIMITS,
    filterSubject: (prefix) => eventSubject(prefix, { context: BILLING_CONTEXT, tenantId: null, workspaceId: null, type: "DefaultLimitsSet" }),
    isPoison: (err) => err instanceof ZodError,
    handle: async (msg: JsMsg) => {
      const e = parseBillingEvent(msg.json());
      await applyConsumed(db, MAILBOX_CONTEXT, e, (tx) => applyOnce(tx, DEFAULT_LIMITS, e, msg.seq, () => applyDefault(tx, e)));
    },
  };
}

async function applyDefault(tx: Tx, e: BillingEnvelope): Promise<void> {
  if (e.type !== "DefaultLimitsSet") return;
  const { planId, limits } = e.data;
  const row = {
    plan_id: limits ? planId : null,
    inboxes: limits?.inboxes ?? null,
    emails_per_month: limits?.emailsPerMonth ?? null,
    domains: limits?.domains ?? null,
    version: e.aggregateVersion,
  };
  await tx
    .insertInto("default_limits")
    .values({ id: 1, ...row })
    .onConflict((oc) => oc.column("id").doUpdateSet(row).where("default_limits.version", "<", e.aggregateVersion))
    .execute();
}

async function applyPause(tx: Tx, e: BillingEnvelope): Promise<void> {
  if (e.type !== "TenantBillingChanged") return;
  const row = { paused: e.data.status === "paused", version: e.aggregateVersion };
  await tx
    .insertInto("tenant_pauses")
    .values({ tenant_id: e.data.tenantId, ...row })
    .onConflict((oc) => oc.column("tenant_id").doUpdateSet(row).where("tenant_pauses.version", "<", e.aggregateVersion))
    .execute();
}

async function applyPlan(tx: Tx, e: BillingEnvelope): Promise<void> {
  if (e.type !== "TenantPlanChanged") return;
  const { tenantId, planId, limits } = e.data;
  const row = { plan_id: planId, inboxes: limits.inboxes, emails_per_month: limits.emailsPerMonth, domains: limits.domains, version: e.aggregateVersion };
  await tx
    .insertInto("tenant_limits")
    .values({ tenant_id: tenantId, ...row })
    .onConflict((oc) => oc.column("tenant_id").doUpdateSet(row).where("tenant_limits.version", "<", e.aggregateVersion))
    .execute();
}
