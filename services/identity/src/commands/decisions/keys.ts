import { AppError, notFound } from "@mam/contracts/errors.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { keyIssued, keyRevoked, type Draft, type NewKey } from "./drafts.ts";
import type { IdentityState, KeyFacts } from "./state.ts";
import { TENANT_KEY_NAME } from "./tenants.ts";
import { tenantSeenBy, workspaceSeenBy } from "./visibility.ts";

export interface IssueWorkspaceKey {
  type: "IssueWorkspaceKey";
  claims: ScopeClaims;
  workspaceId: string;
  name: string | null;
  key: NewKey;
}

export interface RevokeWorkspaceKey {
  type: "RevokeWorkspaceKey";
  claims: ScopeClaims;
  workspaceId: string;
  keyId: string;
}

/** The ak_ key of an inbox the mailbox is creating, on behalf of the caller whose claims these are. */
export interface IssueInboxKey {
  type: "IssueInboxKey";
  claims: ScopeClaims;
  workspaceId: string;
  inboxId: string;
  key: NewKey;
}

/** A deleted inbox's keys stop working (the system decides this, on the mailbox's event). */
export interface RevokeInboxKeys {
  type: "RevokeInboxKeys";
  workspaceId: string;
  inboxId: string;
}

/**
 * An inbox key the mailbox asked for and did not use (another request won the address):
 * revoked on behalf of the same caller, who could have deleted that inbox anyway.
 */
export interface DiscardInboxKey {
  type: "DiscardInboxKey";
  claims: ScopeClaims;
  workspaceId: string;
  keyId: string;
}

/** A tk_ key replaces itself: a new tk_ key is issued and the calling one revoked, together. */
export interface RotateTenantKey {
  type: "RotateTenantKey";
  claims: ScopeClaims;
  key: NewKey;
}

/**
 * Every live tk_ key of a tenant revoked and one new one issued: the operator's answer to a
 * leaked or lost key (a tenant's own tk_ key may do it too, for its tenant only).
 */
export interface ReissueTenantKey {
  type: "ReissueTenantKey";
  claims: ScopeClaims;
  tenantId: string;
  key: NewKey;
}

/** One tk_ key of a tenant revoked, by the operator or the tenant's own tk_ key. */
export interface RevokeTenantKey {
  type: "RevokeTenantKey";
  claims: ScopeClaims;
  tenantId: string;
  keyId: string;
}

export type KeyCommand =
  | IssueWorkspaceKey
  | RevokeWorkspaceKey
  | IssueInboxKey
  | RevokeInboxKeys
  | DiscardInboxKey
  | RotateTenantKey
  | ReissueTenantKey
  | RevokeTenantKey;

const tenantKeys = (state: IdentityState, tenantId: string): KeyFacts[] =>
  state.keys.filter((k) => k.kind === "tenant" && k.tenantId === tenantId && k.workspaceId === null);

const newTenantKey = (key: NewKey, tenantId: string): Draft => keyIssued(key, "tenant", { tenantId, workspaceId: null, inboxId: null }, TENANT_KEY_NAME);

export function decideKey(command: KeyCommand, state: IdentityState): Draft[] {
  switch (command.type) {
    case "IssueWorkspaceKey": {
      const w = workspaceSeenBy(state, command.claims, command.workspaceId);
      return [keyIssued(command.key, "workspace", { tenantId: w.tenantId, workspaceId: w.workspaceId, inboxId: null }, command.name)];
    }
    case "RevokeWorkspaceKey": {
      const w = workspaceSeenBy(state, command.claims, command.workspaceId);
      const k = state.keys.find((x) => x.keyId === command.keyId && x.workspaceId === w.workspaceId);
      if (!k) throw notFound("Key");
      // Idempotent: revoking a revoked key answers the same and records nothing new.
      return k.revoked ? [] : [keyRevoked(k, "revoked")];
    }
    case "IssueInboxKey": {
      const w = workspaceSeenBy(state, command.claims, command.workspaceId);
      const at = { tenantId: w.tenantId, workspaceId: w.workspaceId, inboxId: command.inboxId };
      return [keyIssued(command.key, "inbox", at, "Inbox key")];
    }
    case "DiscardInboxKey": {
      const w = workspaceSeenBy(state, command.claims, command.workspaceId);
      const k = state.keys.find((x) => x.keyId === command.keyId && x.workspaceId === w.workspaceId && x.kind === "inbox");
      if (!k) throw notFound("Key");
      return k.revoked ? [] : [keyRevoked(k, "revoked")];
    }
    case "RevokeInboxKeys": {
      const keys = state.keys.filter((k) => k.workspaceId === command.workspaceId && k.inboxId === command.inboxId && !k.revoked);
      return keys.map((k) => keyRevoked(k, "revoked"));
    }
    case "RotateTenantKey": {
      const { claims } = command;
      if (claims.kind !== "tenant" || !claims.tenantId) throw new AppError("FORBIDDEN", "Only a tenant master key (tk_) can rotate itself");
      const t = tenantSeenBy(state, claims, claims.tenantId);
      const own = tenantKeys(state, t.tenantId).find((k) => k.keyId === claims.kid && !k.revoked);
      // Revoked since the gateway resolved it (a rotation that won a race): it rotates nothing.
      if (!own) throw new AppError("UNAUTHORIZED", "Invalid API key");
      return [newTenantKey(command.key, t.tenantId), keyRevoked(own, "rotated")];
    }
    case "ReissueTenantKey": {
      const t = tenantSeenBy(state, command.claims, command.tenantId);
      const live = tenantKeys(state, t.tenantId).filter((k) => !k.revoked);
      return [newTenantKey(command.key, t.tenantId), ...live.map((k) => keyRevoked(k, "rotated"))];
    }
    case "RevokeTenantKey": {
      const t = tenantSeenBy(state, command.claims, command.tenantId);
      const k = tenantKeys(state, t.tenantId).find((x) => x.keyId === command.keyId);
      if (!k) throw notFound("Key");
      return k.revoked ? [] : [keyRevoked(k, "revoked")];
    }
    default: {
      const unreachable: never = command;
      throw new Error(`unhandled key command ${(unreachable as KeyCommand).type}`);
    }
  }
}
