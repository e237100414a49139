import { AppError, limitReached, notFound } from "@mam/contracts/errors.ts";
import type { PublicEventType } from "@mam/contracts/realtime-feed.ts";
import type { RealtimeEvent } from "@mam/contracts/realtime-events.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { EventDraft } from "@mam/service-kit/commands.ts";

export type WebhookDraft = EventDraft<RealtimeEvent>;

export interface WebhookState {
  id: string;
  /** null: every workspace of the tenant. */
  workspaceId: string | null;
  url: string;
  events: PublicEventType[];
  isActive: boolean;
  version: number;
}

/** One tenant's webhooks, as far as a command needs them. */
export interface WebhooksState {
  /** The webhooks the command is about (`load` reads those only); every one when folded from events. */
  webhooks: Record<string, WebhookState>;
  /** Live webhooks of the tenant, every workspace together: what the cap counts. */
  count: number;
  /** Workspaces identity deleted. */
  ended: Record<string, true>;
}

export type WebhookCommand =
  | { type: "CreateWebhook"; caller: ScopeClaims; webhookId: string; url: string; events: PublicEventType[]; isActive: boolean; max: number }
  | { type: "UpdateWebhook"; caller: ScopeClaims; webhookId: string; url?: string; events?: PublicEventType[]; isActive?: boolean }
  | { type: "DeleteWebhook"; caller: ScopeClaims; webhookId: string }
  /** Identity deleted a workspace: its webhooks go with it. */
  | { type: "EndWorkspace"; tenantId: string; workspaceId: string };

export const initial = (): WebhooksState => ({ webhooks: {}, count: 0, ended: {} });

/** Webhooks are managed with tk_ and wk_ keys; an ak_ key (or the operator's) may not. */
export function requireManager(caller: ScopeClaims): asserts caller is ScopeClaims & { tenantId: string } {
  if ((caller.kind !== "tenant" && caller.kind !== "workspace") || !caller.tenantId) throw new AppError("FORBIDDEN", "Only tk_ and wk_ keys manage webhooks");
}

/** A wk_ key's webhooks live in its workspace; a tk_ key's fire for every workspace of the tenant. */
export const homeOf = (caller: ScopeClaims): string | null => (caller.kind === "workspace" ? (caller.workspaces as string[])[0]! : null);

/** A tk_ key sees every webhook of its tenant (`load` reads no other); a wk_ key those of its workspace only. */
export const sees = (caller: ScopeClaims, w: Pick<WebhookState, "workspaceId">) =>
  caller.kind === "tenant" || (caller.kind === "workspace" && w.workspaceId !== null && (caller.workspaces as string[]).includes(w.workspaceId));

function visible(state: WebhooksState, caller: ScopeClaims, id: string): WebhookState {
  const w = state.webhooks[id];
  if (!w || !sees(caller, w)) throw notFound("Webhook");
  return w;
}

const about = (tenantId: string, w: Pick<WebhookState, "id" | "workspaceId" | "version">, event: RealtimeEvent): WebhookDraft => ({
  event,
  tenantId,
  workspaceId: w.workspaceId,
  aggregateId: w.id,
  aggregateVersion: w.version + 1,
});

const sameEvents = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

export function decide(cmd: WebhookCommand, state: WebhooksState): WebhookDraft[] {
  switch (cmd.type) {
    case "CreateWebhook": {
      const { caller } = cmd;
      requireManager(caller);
      const workspaceId = homeOf(caller);
      if (workspaceId && state.ended[workspaceId]) throw notFound("Workspace");
      if (state.count >= cmd.max) {
        throw limitReached(`A tenant may have at most ${cmd.max} webhooks`, { limit: "webhooks", usage: state.count, max: cmd.max });
      }
      const data = { webhookId: cmd.webhookId, url: cmd.url, events: cmd.events, isActive: cmd.isActive, workspaceId };
      return [about(caller.tenantId, { id: cmd.webhookId, workspaceId, version: 0 }, { type: "WebhookCreated", schemaVersion: 1, data })];
    }
    case "UpdateWebhook": {
      requireManager(cmd.caller);
      const w = visible(state, cmd.caller, cmd.webhookId);
      // Only what changes is said; a PATCH that changes nothing is no event.
      const data = {
        webhookId: w.id,
        ...(cmd.url !== undefined && cmd.url !== w.url && { url: cmd.url }),
        ...(cmd.events !== undefined && !sameEvents(cmd.events, w.events) && { events: cmd.events }),
        ...(cmd.isActive !== undefined && cmd.isActive !== w.isActive && { isActive: cmd.isActive }),
      };
      if (Object.keys(data).length === 1) return [];
      return [about(cmd.caller.tenantId, w, { type: "WebhookUpdated", schemaVersion: 1, data })];
    }
    case "DeleteWebhook": {
      requireManager(cmd.caller);
      const w = visible(state, cmd.caller, cmd.webhookId);
      return [about(cmd.caller.tenantId, w, { type: "WebhookDeleted", schemaVersion: 1, data: { webhookId: w.id } })];
    }
    case "EndWorkspace":
      return Object.values(state.webhooks)
        .filter((w) => w.workspaceId === cmd.workspaceId)
        .map((w) => about(cmd.tenantId, w, { type: "WebhookDeleted", schemaVersion: 1, data: { webhookId: w.id, reason: "workspace_deleted" } }));
    default: {
      const unreachable: never = cmd;
      throw new Error(`unhandled webhook command ${(unreachable as WebhookCommand).type}`);
    }
  }
}

/** Folds the Webhook aggregate's events into the state a command is decided against. */
export function evolve(state: WebhooksState, e: RealtimeEvent): WebhooksState {
  const webhooks = { ...state.webhooks };
  switch (e.type) {
    case "WebhookCreated": {
      const { webhookId, url, events, isActive, workspaceId } = e.data;
      webhooks[webhookId] = { id: webhookId, url, events, isActive, workspaceId, version: 1 };
      return { ...state, webhooks, count: state.count + 1 };
    }
    case "WebhookUpdated": {
      const w = webhooks[e.data.webhookId];
      if (!w) return state;
      const { webhookId: _, ...changes } = e.data;
      webhooks[w.id] = { ...w, ...changes, version: w.version + 1 };
      return { ...state, webhooks };
    }
    case "WebhookDeleted": {
      if (!webhooks[e.data.webhookId]) return state;
      delete webhooks[e.data.webhookId];
      return { ...state, webhooks, count: state.count - 1 };
    }
    default: {
      const unreachable: never = e;
      throw new Error(`unhandled webhook event ${(unreachable as RealtimeEvent).type}`);
    }
  }
}
