import { sql, type ExpressionBuilder, type Kysely } from "kysely";
import { notFound, parseOrThrow } from "@mam/contracts/errors.ts";
import type { PublicEventType } from "@mam/contracts/realtime-feed.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { DeliveryPage, Webhook, WebhookList } from "@mam/contracts/webhooks-api.ts";
import { NO_WORKSPACE } from "@mam/service-kit/event-sourcing.ts";
import { cursorKeys, keyInstant, pageOf, paginationOf, pastKeys, type PageRequest } from "@mam/service-kit/keyset.ts";
import { z } from "zod";
import type { RealtimeContext } from "../context.ts";
import type { RealtimeDb } from "../db/schema.ts";
import { requireManager, sees } from "./decide.ts";

export const WebhookId = z.uuid();
/** The log's total is counted up to this (the largest offset a page may start at, and one more page). */
const COUNT_CAP = 1_000_100;

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** A webhook row with what its attempts say of it. */
function webhookRows(db: Kysely<RealtimeDb>) {
  return db
    .selectFrom("webhooks as w")
    .leftJoin("webhook_health as h", (j) => j.onRef("h.workspace_id", "=", "w.workspace_id").onRef("h.webhook_id", "=", "w.webhook_id"))
    .select([
      "w.workspace_id",
      "w.webhook_id",
      "w.tenant_id",
      "w.url",
      "w.events",
      "w.is_active",
      "w.version",
      "w.created_at",
      "w.updated_at",
      "h.failing_since",
      "h.last_delivery_at",
    ]);
}
type WebhookRow = Awaited<ReturnType<ReturnType<typeof webhookRows>["executeTakeFirstOrThrow"]>>;

export const workspaceOfRow = (r: { workspace_id: string }) => (r.workspace_id === NO_WORKSPACE ? null : r.workspace_id);

export function toWebhook(r: WebhookRow): Webhook {
  return {
    id: r.webhook_id,
    url: r.url,
    events: r.events as PublicEventType[],
    isActive: r.is_active,
    workspaceId: workspaceOfRow(r),
    status: r.failing_since ? "failing" : "healthy",
    failingSince: iso(r.failing_since),
    lastDeliveryAt: iso(r.last_delivery_at),
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

/** One webhook of a tenant, by id, whoever may see it (callers check). */
export function webhookOfTenant(db: Kysely<RealtimeDb>, tenantId: string, webhookId: string): Promise<WebhookRow | undefined> {
  return webhookRows(db).where("w.tenant_id", "=", tenantId).where("w.webhook_id", "=", webhookId).executeTakeFirst();
}

/** The webhook if the caller sees it; anything else (another tenant's or workspace's, deleted, never was) is the same 404. */
export async function visibleWebhook(db: Kysely<RealtimeDb>, claims: ScopeClaims, rawId: unknown): Promise<WebhookRow> {
  requireManager(claims);
  const id = parseOrThrow(WebhookId, rawId, "webhook id");
  const row = await webhookOfTenant(db, claims.tenantId, id);
  if (!row || !sees(claims, { workspaceId: workspaceOfRow(row) })) throw notFound("Webhook");
  return row;
}

const LIST = "webhooks";

/** The tenant's webhooks a key sees (a wk_ key: its workspace's): the scope, whatever a cursor says. */
function inScope(claims: ScopeClaims & { tenantId: string }) {
  return (eb: ExpressionBuilder<{ w: RealtimeDb["webhooks"] }, "w">) =>
    claims.kind === "workspace"
      ? eb.and([eb("w.tenant_id", "=", claims.tenantId), eb("w.workspace_id", "in", claims.workspaces as string[])])
      : eb("w.tenant_id", "=", claims.tenantId);
}

/** One page (and one row more) in `(created_at, webhook_id)` order, served by `webhooks_tenant`. */
export function webhookPageQuery(db: Kysely<RealtimeDb>, claims: ScopeClaims & { tenantId: string }, req: PageRequest) {
  const after = cursorKeys(LIST, req);
  let q = webhookRows(db).select(keyInstant("w.created_at").as("key_at")).where(inScope(claims));
  q = after ? q.where(pastKeys("w.created_at", "w.webhook_id", after)) : q.offset(req.offset);
  return q
    .orderBy("w.created_at")
    .orderBy("w.webhook_id")
    .limit(req.limit + 1);
}

export async function listWebhooks(ctx: RealtimeContext, claims: ScopeClaims, req: PageRequest): Promise<z.input<typeof WebhookList>> {
  requireManager(claims);
  const [rows, total] = await Promise.all([
    webhookPageQuery(ctx.db, claims, req).execute(),
    ctx.db.selectFrom("webhooks as w").where(inScope(claims)).select(sql<string>`count(*)`.as("n")).executeTakeFirstOrThrow(),
  ]);
  const page = pageOf(LIST, rows, req.limit, (r) => r.webhook_id);
  return { webhooks: page.rows.map(toWebhook), pagination: paginationOf(req, Number(total.n), page.nextCursor) };
}

export async function getWebhook(ctx: RealtimeContext, claims: ScopeClaims, rawId: unknown): Promise<Webhook> {
  return toWebhook(await visibleWebhook(ctx.db, claims, rawId));
}

const deliveriesOf = (webhookId: string) => `deliveries:${webhookId}`;

const attemptsOf = (db: Kysely<RealtimeDb>, w: { workspace_id: string; webhook_id: string }) =>
  db.selectFrom("webhook_attempts").where("workspace_id", "=", w.workspace_id).where("webhook_id", "=", w.webhook_id);

/** One page (and one row more) of the log, newest first, read backwards along its primary key. */
export function deliveryPageQuery(db: Kysely<RealtimeDb>, w: { workspace_id: string; webhook_id: string }, req: PageRequest) {
  const after = cursorKeys(deliveriesOf(w.webhook_id), req);
  let q = attemptsOf(db, w).selectAll().select(keyInstant("attempted_at").as("key_at"));
  q = after ? q.where(pastKeys("attempted_at", "attempt_id", after, "desc")) : q.offset(req.offset);
  return q
    .orderBy("attempted_at", "desc")
    .orderBy("attempt_id", "desc")
    .limit(req.limit + 1);
}

/** The webhook's delivery log, newest attempt first, a page at a time. */
export async function listDeliveries(
  ctx: RealtimeContext,
  claims: ScopeClaims,
  req: PageRequest & { webhookId: string },
): Promise<z.input<typeof DeliveryPage>> {
  const w = await visibleWebhook(ctx.db, claims, req.webhookId);
  const [rows, total] = await Promise.all([
    deliveryPageQuery(ctx.db, w, req).execute(),
    // Counted up to the furthest page a client may ask for: a busy webhook's month of attempts is not counted on every page.
    ctx.db
      .selectFrom(attemptsOf(ctx.db, w).select(sql`1`.as("one")).limit(COUNT_CAP).as("page"))
      .select(sql<string>`count(*)`.as("n"))
      .executeTakeFirstOrThrow(),
  ]);
  const page = pageOf(deliveriesOf(w.webhook_id), rows, req.limit, (r) => r.attempt_id);
  return {
    deliveries: page.rows.map((r) => ({
      id: r.attempt_id,
      eventId: r.event_id,
      event: r.event_type as PublicEventType,
      attempt: r.attempt,
      attemptedAt: r.attempted_at.toISOString(),
      statusCode: r.status_code,
      latencyMs: r.latency_ms,
      success: r.success,
      error: r.error,
      nextAttemptAt: iso(r.next_attempt_at),
    })),
    pagination: paginationOf(req, Number(total.n), page.nextCursor),
  };
}
