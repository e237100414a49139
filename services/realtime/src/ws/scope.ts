import type { KeyKind } from "@mam/contracts/keys.ts";
import { PUBLIC_EVENT_TYPES, type FeedEvent, type PublicEventType } from "@mam/contracts/realtime-feed.ts";
import type { ServerFrame, SubscribeFrame } from "@mam/contracts/ws-frames.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";

/**
 * The most a connection may ever see: its key's scope, narrowed to one inbox on the
 * per-inbox path. No subscribe frame widens it; every event is checked against it.
 */
export interface Ceiling {
  keyId: string;
  kind: KeyKind;
  tenantId: string;
  /** "*": every workspace of the tenant (a tk_ key), else the key's own. */
  workspaces: "*" | readonly string[];
  /** An ak_ key's inbox, or the inbox of `/v1/inboxes/:id/ws`. */
  inboxId: string | null;
}

/** What a subscription narrows the ceiling to; null: no narrowing on that axis. */
export interface Filters {
  types: ReadonlySet<PublicEventType> | null;
  workspaces: ReadonlySet<string> | null;
  inboxes: ReadonlySet<string> | null;
}

/** What the directory knows of the ids a frame names (deleted ones are absent). */
export interface DirectoryView {
  inboxes: ReadonlyMap<string, { tenantId: string; workspaceId: string }>;
  workspaces: ReadonlyMap<string, { tenantId: string }>;
}

/** The one feed subject filter a resume reads: the narrowest scope the subscription stays inside. */
export interface ResumeScope {
  tenantId: string;
  workspaceId?: string;
  inboxId?: string;
}

export type SubscribedFrame = Extract<ServerFrame, { type: "subscribed" }>;

export type Decision = { ok: true; filters: Filters; subscribed: SubscribedFrame; resume: ResumeScope; workspaceOfInbox: string | null } | { ok: false };

/** A token without a tenant (the operator's) has nothing to subscribe to. */
export function ceilingOf(claims: ScopeClaims, pathInbox: string | null): Ceiling | undefined {
  if (!claims.tenantId) return undefined;
  if (claims.inboxId && pathInbox && claims.inboxId !== pathInbox) return undefined;
  return {
    keyId: claims.kid,
    kind: claims.kind,
    tenantId: claims.tenantId,
    workspaces: claims.workspaces,
    inboxId: claims.inboxId ?? pathInbox,
  };
}

/** The ids a frame makes the directory look up (the path's inbox too: its workspace decides). */
export function idsToLook(c: Ceiling, f: SubscribeFrame): { inboxes: string[]; workspaces: string[] } {
  const inboxes = new Set(f.inbox_ids ?? []);
  if (c.inboxId) inboxes.add(c.inboxId);
  return { inboxes: [...inboxes], workspaces: [...new Set([...(f.workspace_ids ?? []), ...(f.pod_ids ?? [])])] };
}

/** Where the ceiling's inbox is: an ak_ key's token says so; the per-inbox path's is looked up. */
function ceilingInbox(c: Ceiling, dir: DirectoryView): { tenantId: string; workspaceId: string } | undefined {
  if (!c.inboxId) return undefined;
  if (c.kind === "inbox" && c.workspaces !== "*" && c.workspaces.length === 1) return { tenantId: c.tenantId, workspaceId: c.workspaces[0]! };
  return dir.inboxes.get(c.inboxId);
}

const inWorkspaces = (c: Ceiling, workspaceId: string) => c.workspaces === "*" || c.workspaces.includes(workspaceId);

/**
 * Whether a subscribe frame stays inside the ceiling, and the filters it sets. Any id outside
 * (another tenant's, another workspace's, another inbox's, or one the directory does not
 * know) refuses the whole frame: the caller answers NOT_FOUND without saying which, or why.
 */
export function decideSubscription(c: Ceiling, f: SubscribeFrame, dir: DirectoryView): Decision {
  const ownInbox = ceilingInbox(c, dir);
  // The path's inbox must still be where the key sees it (an ak_ key's is in its signed scope).
  if (c.inboxId && (!ownInbox || ownInbox.tenantId !== c.tenantId || !inWorkspaces(c, ownInbox.workspaceId))) return { ok: false };

  const workspaces = [...new Set([...(f.workspace_ids ?? []), ...(f.pod_ids ?? [])])];
  for (const w of workspaces) {
    if (ownInbox && w !== ownInbox.workspaceId) return { ok: false };
    if (c.workspaces === "*") {
      if (dir.workspaces.get(w)?.tenantId !== c.tenantId) return { ok: false };
    } else if (!c.workspaces.includes(w)) return { ok: false };
  }

  const named = [...new Set(f.inbox_ids ?? [])];
  for (const i of named) {
    if (c.inboxId) {
      if (i !== c.inboxId) return { ok: false };
      continue;
    }
    const at = dir.inboxes.get(i);
    if (!at || at.tenantId !== c.tenantId || !inWorkspaces(c, at.workspaceId)) return { ok: false };
  }

  const inboxes = named.length ? named : c.inboxId ? [c.inboxId] : [];
  const types = f.event_types?.length ? [...new Set(f.event_types)] : null;
  const filters: Filters = {
    types: types ? new Set(types) : null,
    workspaces: workspaces.length ? new Set(workspaces) : null,
    inboxes: inboxes.length ? new Set(inboxes) : null,
  };
  return {
    ok: true,
    filters,
    subscribed: {
      type: "subscribed",
      event_types: types ?? [...PUBLIC_EVENT_TYPES],
      inbox_ids: inboxes,
      workspace_ids: workspaces,
      pod_ids: workspaces,
      ...(f.last_event_id && { last_event_id: f.last_event_id }),
    },
    resume: resumeScope(c, filters, dir),
    workspaceOfInbox: ownInbox?.workspaceId ?? null,
  };
}

/** One inbox (whose workspace is known), else one workspace, else the whole tenant. */
function resumeScope(c: Ceiling, f: Filters, dir: DirectoryView): ResumeScope {
  const only = <T>(s: ReadonlySet<T> | null) => (s && s.size === 1 ? [...s][0] : undefined);
  const inbox = only(f.inboxes);
  const workspaceOfInbox = inbox ? (inbox === c.inboxId ? ceilingInbox(c, dir) : dir.inboxes.get(inbox))?.workspaceId : undefined;
  if (inbox && workspaceOfInbox) return { tenantId: c.tenantId, workspaceId: workspaceOfInbox, inboxId: inbox };
  const workspace = only(f.workspaces) ?? (c.workspaces !== "*" && c.workspaces.length === 1 ? c.workspaces[0] : undefined);
  return workspace ? { tenantId: c.tenantId, workspaceId: workspace } : { tenantId: c.tenantId };
}

/** Where an event goes: its tenant, workspace and inbox (none for a domain's). */
export type Routed = Pick<FeedEvent, "tenantId" | "workspaceId" | "inboxId">;

/** Whether an event is inside the ceiling. An event without an inbox (a domain's) never reaches an inbox's connection. */
export function withinCeiling(c: Ceiling, e: Routed): boolean {
  if (e.tenantId !== c.tenantId || !inWorkspaces(c, e.workspaceId)) return false;
  return !c.inboxId || e.inboxId === c.inboxId;
}

/** Whether a connection with this ceiling and these filters is sent an event. */
export function matches(c: Ceiling, f: Filters, e: Routed & Pick<FeedEvent, "eventType">): boolean {
  if (!withinCeiling(c, e)) return false;
  if (f.types && !f.types.has(e.eventType)) return false;
  if (f.workspaces && !f.workspaces.has(e.workspaceId)) return false;
  if (f.inboxes && (!e.inboxId || !f.inboxes.has(e.inboxId))) return false;
  return true;
}

/**
 * Where a subscribed connection is filed for dispatch: under each inbox it follows, else each
 * workspace, else its tenant. An event is offered to the connections filed under its inbox,
 * its workspace and its tenant: each of them once, since each is filed under one kind of key.
 */
export function dispatchKeys(c: Ceiling, f: Filters): string[] {
  if (f.inboxes) return [...f.inboxes].map((i) => `i:${i}`);
  const workspaces = f.workspaces ?? (c.workspaces === "*" ? null : new Set(c.workspaces));
  if (workspaces) return [...workspaces].map((w) => `w:${w}`);
  return [`t:${c.tenantId}`];
}

/** The keys an event is looked up under (see dispatchKeys). */
export function eventKeys(e: Routed): string[] {
  return e.inboxId ? [`i:${e.inboxId}`, `w:${e.workspaceId}`, `t:${e.tenantId}`] : [`w:${e.workspaceId}`, `t:${e.tenantId}`];
}
