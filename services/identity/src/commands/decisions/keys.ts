import { notFound } from "@mam/contracts/errors.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { keyIssued, keyRevoked, type Draft, type NewKey } from "./drafts.ts";
import type { IdentityState } from "./state.ts";
import { workspaceSeenBy } from "./visibility.ts";

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

export type KeyCommand = IssueWorkspaceKey | RevokeWorkspaceKey | IssueInboxKey | RevokeInboxKeys | DiscardInboxKey;

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
    default: {
      const unreachable: never = command;
      throw new Error(`unhandled key command ${(unreachable as KeyCommand).type}`);
    }
  }
}
