import { sql, type Kysely } from "kysely";
import { notFound, parseOrThrow } from "@mam/contracts/errors.ts";
import type { PublicEventType } from "@mam/contracts/realtime-feed.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { DeliveryPage, Webhook } from "@mam/contracts/webhooks-api.ts";
import { NO_WORKSPACE } from "@mam/service-kit/event-sourcing.ts";
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

export async function listWebhooks(ctx: RealtimeContext, claims: ScopeClaims): Promise<{ webhooks: Webhook[] }> {
  requireManager(claims);
  let q = webhookRows(ctx.db).where("w.tenant_id", "=", claims.tenantId);
  if (claims.kind === "workspace") q = q.where("w.workspace_id", "in", claims.workspaces as string[]);
  const rows = await q.orderBy("w.created_at").orderBy("w.webhook_id").execute();
  return { webhooks: rows.map(toWebhook) };
}

export async function getWebhook(ctx: RealtimeContext, claims: ScopeClaims, rawId: unknown): Promise<Webhook> {
  return toWebhook(await visibleWebhook(ctx.db, claims, rawId));
}

/** The webhook's delivery log, newest attempt first, a page at a time. */
export async function listDeliveries(
  ctx: RealtimeContext,
  claims: ScopeClaims,
  req: { webhookId: string; limit: number; offset: number },
): Promise<z.input<typeof DeliveryPage>> {
  const w = await visibleWebhook(ctx.db, claims, req.webhookId);
  const log = ctx.db.selectFrom("webhook_attempts").where("workspace_id", "=", w.workspace_id).where("webhook_id", "=", w.webhook_id);
  const [rows, total] = await Promise.all([
    log.selectAll().orderBy("attempted_at", "desc").orderBy("attempt_id", "desc").limit(req.limit).offset(req.offset).execute(),
    // Counted up to the furthest page a client may ask for: a busy webhook's month of attempts is not counted on every page.
    ctx.db
      .selectFrom(log.select(sql`1`.as("one")).limit(COUNT_CAP).as("page"))
      .select(sql<string>`count(*)`.as("n"))
      .executeTakeFirstOrThrow(),
  ]);
  return {
    deliveries: rows.map((r) => ({
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
    pagination: { total: Number(total.n), limit: req.limit, offset: req.offset },
  };
}
