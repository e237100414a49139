import type { KeyKind } from "@mam/contracts/keys.ts";
import { hashKey } from "@mam/scope/key-hash.ts";
import type { IdentityContext } from "../context.ts";
import { generateKey, shownPrefix } from "../keys.ts";
import { keyRevoked, type NewKey } from "./decisions/drafts.ts";
import type { EventDraft } from "./append.ts";

/**
 * A key's id, shown prefix and hash, made before its command is decided so the decision
 * stays deterministic. The plaintext goes back to the caller and into no event.
 */
export function newKey(ctx: IdentityContext, kind: KeyKind, plaintext: string = generateKey(kind)): { plaintext: string; key: NewKey } {
  return { plaintext, key: { keyId: ctx.newId(), prefix: shownPrefix(plaintext), keyHash: hashKey(plaintext) } };
}

/**
 * TRANSITIONAL: projections/workspace-counters.ts still revokes a deleted inbox's keys with
 * its own decision; once it calls `revokeInboxKeys` (commands/inbox-keys.ts), this goes.
 */
export function revokeDraft(
  key: { key_id: string; tenant_id: string | null },
  workspaceId: string | null,
  reason: "revoked" | "workspace_deleted",
): EventDraft {
  return keyRevoked({ keyId: key.key_id, tenantId: key.tenant_id, workspaceId }, reason);
}
