import type { IdentityEvent, KeyRevokedReason } from "@mam/contracts/identity-events.ts";
import type { KeyKind } from "@mam/contracts/keys.ts";
import type { EventDraft } from "@mam/service-kit/commands.ts";
import type { KeyFacts } from "./state.ts";

export type Draft = EventDraft<IdentityEvent>;

/**
 * A key made before its command is decided (randomness and hashing are not the
 * decision's business). The plaintext stays with the command's caller: the decision,
 * like the event, only ever sees the hash.
 */
export interface NewKey {
  keyId: string;
  prefix: string;
  keyHash: string;
}

export interface KeyPlacement {
  tenantId: string | null;
  workspaceId: string | null;
  inboxId: string | null;
}

export function keyIssued(key: NewKey, kind: KeyKind, at: KeyPlacement, name: string | null): Draft {
  return {
    event: {
      type: "KeyIssued",
      schemaVersion: 1,
      data: {
        keyId: key.keyId,
        kind,
        name,
        prefix: key.prefix,
        keyHash: key.keyHash,
        tenantId: at.tenantId,
        workspaceId: at.workspaceId,
        inboxId: at.inboxId,
      },
    },
    tenantId: at.tenantId,
    workspaceId: at.workspaceId,
    aggregateId: key.keyId,
    aggregateVersion: 1,
  };
}

/** The draft's workspace is the key's: the read model finds the key's row by it. */
export function keyRevoked(key: Pick<KeyFacts, "keyId" | "tenantId" | "workspaceId">, reason: KeyRevokedReason): Draft {
  return {
    event: { type: "KeyRevoked", schemaVersion: 1, data: { keyId: key.keyId, reason } },
    tenantId: key.tenantId,
    workspaceId: key.workspaceId,
    aggregateId: key.keyId,
    aggregateVersion: 2,
  };
}
