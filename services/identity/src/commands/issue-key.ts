import type { KeyKind } from "@mam/contracts/keys.ts";
import type { IdentityContext } from "../context.ts";
import { hashKey } from "@mam/scope/key-hash.ts";
import { generateKey, shownPrefix } from "../keys.ts";
import type { EventDraft } from "./append.ts";

export interface NewKey {
  keyId: string;
  plaintext: string;
  prefix: string;
  draft: EventDraft;
}

/** Generates a key and the KeyIssued event that records only its hash. */
export function newKey(
  ctx: IdentityContext,
  kind: KeyKind,
  at: { tenantId: string | null; workspaceId: string | null; inboxId?: string | null },
  name: string | null,
  plaintext: string = generateKey(kind),
): NewKey {
  const keyId = ctx.newId();
  const prefix = shownPrefix(plaintext);
  return {
    keyId,
    plaintext,
    prefix,
    draft: {
      event: {
        type: "KeyIssued",
        schemaVersion: 1,
        data: {
          keyId,
          kind,
          name,
          prefix,
          keyHash: hashKey(plaintext),
          tenantId: at.tenantId,
          workspaceId: at.workspaceId,
          inboxId: at.inboxId ?? null,
        },
      },
      tenantId: at.tenantId,
      workspaceId: at.workspaceId,
      aggregateId: keyId,
      aggregateVersion: 1,
    },
  };
}

export function revokeDraft(
  key: { key_id: string; tenant_id: string | null; workspace_id: string },
  workspaceId: string | null,
  reason: "revoked" | "workspace_deleted",
): EventDraft {
  return {
    event: { type: "KeyRevoked", schemaVersion: 1, data: { keyId: key.key_id, reason } },
    tenantId: key.tenant_id,
    workspaceId,
    aggregateId: key.key_id,
    aggregateVersion: 2,
  };
}
