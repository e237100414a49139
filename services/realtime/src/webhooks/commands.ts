import type { Kysely } from "kysely";
import { parseOrThrow } from "@mam/contracts/errors.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { CreatedWebhook, CreateWebhookBody, UpdateWebhookBody, Webhook } from "@mam/contracts/webhooks-api.ts";
import type { z } from "zod";
import type { RealtimeContext } from "../context.ts";
import type { RealtimeDb } from "../db/schema.ts";
import { decide, homeOf, initial, requireManager, type WebhookCommand, type WebhookDraft, type WebhooksState } from "./decide.ts";
import { execute, type CommandMeta } from "./execute.ts";
import { fileOf } from "./projection.ts";
import { toWebhook, WebhookId, webhookOfTenant, workspaceOfRow } from "./read.ts";
import { newWebhookSecret } from "./signing.ts";
import { checkWebhookUrl } from "./url-policy.ts";

type Tx = Kysely<RealtimeDb>;

const stateOf = (rows: { webhook_id: string; workspace_id: string; url: string; events: string[]; is_active: boolean; version: number }[]) =>
  Object.fromEntries(
    rows.map((r) => [
      r.webhook_id,
      { id: r.webhook_id, workspaceId: workspaceOfRow(r), url: r.url, events: r.events as never, isActive: r.is_active, version: r.version },
    ]),
  );

/**
 * What a command of a tenant is decided against, read under the tenant's lock: the count the
 * cap is decided on, the webhooks it is about (one, or a workspace's), whether a workspace ended.
 */
async function load(tx: Tx, tenantId: string, o: { webhookId?: string; inWorkspace?: string; ended?: string | null }): Promise<WebhooksState> {
  const state = initial();
  const counted = await tx
    .selectFrom("webhooks")
    .select((eb) => eb.fn.countAll<string>().as("n"))
    .where("tenant_id", "=", tenantId)
    .executeTakeFirstOrThrow();
  state.count = Number(counted.n);
  const about = tx.selectFrom("webhooks").select(["webhook_id", "workspace_id", "url", "events", "is_active", "version"]).where("tenant_id", "=", tenantId);
  if (o.webhookId) state.webhooks = stateOf(await about.where("webhook_id", "=", o.webhookId).execute());
  if (o.inWorkspace) state.webhooks = stateOf(await about.where("workspace_id", "=", o.inWorkspace).execute());
  if (o.ended) {
    const ended = await tx.selectFrom("webhook_ended_workspaces").select("workspace_id").where("workspace_id", "=", o.ended).executeTakeFirst();
    if (ended) state.ended[o.ended] = true;
  }
  return state;
}

/** Everything of a deleted webhook that is not its read model: secret, health, queue, log. */
async function dropSideRows(tx: Tx, drafts: WebhookDraft[]): Promise<void> {
  for (const d of drafts) {
    if (d.event.type !== "WebhookDeleted") continue;
    const [file, id] = [fileOf(d.workspaceId), d.aggregateId];
    await tx.deleteFrom("webhook_secrets").where("workspace_id", "=", file).where("webhook_id", "=", id).execute();
    await tx.deleteFrom("webhook_health").where("workspace_id", "=", file).where("webhook_id", "=", id).execute();
    await tx.deleteFrom("webhook_deliveries").where("webhook_id", "=", id).execute();
    await tx.deleteFrom("webhook_attempts").where("workspace_id", "=", file).where("webhook_id", "=", id).execute();
  }
}

async function answerOf(tx: Tx, tenantId: string, webhookId: string): Promise<Webhook> {
  return toWebhook((await webhookOfTenant(tx, tenantId, webhookId))!);
}

/** Registers a webhook; its signing secret is in this answer only (and in no event: in realtime's own table, same transaction). */
export async function createWebhook(
  ctx: RealtimeContext,
  claims: ScopeClaims,
  body: z.output<typeof CreateWebhookBody>,
  meta: CommandMeta,
): Promise<z.input<typeof CreatedWebhook>> {
  requireManager(claims);
  checkWebhookUrl(body.url, ctx.cfg.WEBHOOK_ALLOW_PRIVATE);
  const cmd: WebhookCommand = {
    type: "CreateWebhook",
    caller: claims,
    webhookId: ctx.newId(),
    url: body.url,
    events: body.events,
    isActive: body.isActive ?? true,
    max: ctx.cfg.MAX_WEBHOOKS_PER_TENANT,
  };
  const secret = newWebhookSecret();
  return execute(ctx, claims.tenantId, meta, {
    load: (tx) => load(tx, claims.tenantId, { ended: homeOf(claims) }),
    decide: (state) => decide(cmd, state),
    answer: async (tx, _state, [d]) => {
      const file = fileOf(d!.workspaceId);
      await tx
        .insertInto("webhook_secrets")
        .values({ workspace_id: file, webhook_id: cmd.webhookId, tenant_id: claims.tenantId, secret, created_at: ctx.clock() })
        .execute();
      await tx.insertInto("webhook_health").values({ workspace_id: file, webhook_id: cmd.webhookId, failing_since: null, last_delivery_at: null }).execute();
      return { ...(await answerOf(tx, claims.tenantId, cmd.webhookId)), secret };
    },
  });
}

export async function updateWebhook(
  ctx: RealtimeContext,
  claims: ScopeClaims,
  req: { webhookId: string; body: z.output<typeof UpdateWebhookBody> },
  meta: CommandMeta,
): Promise<Webhook> {
  requireManager(claims);
  const webhookId = parseOrThrow(WebhookId, req.webhookId, "webhook id");
  if (req.body.url !== undefined) checkWebhookUrl(req.body.url, ctx.cfg.WEBHOOK_ALLOW_PRIVATE);
  const cmd: WebhookCommand = { type: "UpdateWebhook", caller: claims, webhookId, ...req.body };
  return execute(ctx, claims.tenantId, meta, {
    load: (tx) => load(tx, claims.tenantId, { webhookId }),
    decide: (state) => decide(cmd, state),
    answer: (tx) => answerOf(tx, claims.tenantId, webhookId),
  });
}

/** Deletes a webhook with its pending deliveries, its log and its secret. */
export async function deleteWebhook(ctx: RealtimeContext, claims: ScopeClaims, rawId: string, meta: CommandMeta): Promise<{ deleted: boolean; id: string }> {
  requireManager(claims);
  const webhookId = parseOrThrow(WebhookId, rawId, "webhook id");
  const cmd: WebhookCommand = { type: "DeleteWebhook", caller: claims, webhookId };
  return execute(ctx, claims.tenantId, meta, {
    load: (tx) => load(tx, claims.tenantId, { webhookId }),
    decide: (state) => decide(cmd, state),
    answer: async (tx, _state, drafts) => {
      await dropSideRows(tx, drafts);
      return { deleted: true, id: webhookId };
    },
  });
}

/** A workspace identity deleted: its webhooks go (WebhookDeleted, workspace_deleted), and none is created there again. Idempotent. */
export async function endWorkspace(ctx: RealtimeContext, cmd: { tenantId: string; workspaceId: string }, meta: CommandMeta): Promise<number> {
  return execute(ctx, cmd.tenantId, meta, {
    load: (tx) => load(tx, cmd.tenantId, { inWorkspace: cmd.workspaceId }),
    decide: (state) => decide({ type: "EndWorkspace", ...cmd }, state),
    answer: async (tx, _state, drafts) => {
      await tx
        .insertInto("webhook_ended_workspaces")
        .values({ workspace_id: cmd.workspaceId, tenant_id: cmd.tenantId, ended_at: ctx.clock() })
        .onConflict((oc) => oc.column("workspace_id").doNothing())
        .execute();
      await dropSideRows(tx, drafts);
      return drafts.length;
    },
  });
}
