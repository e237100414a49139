import { AppError, notFound, parseOrThrow } from "@mam/contracts/errors.ts";
import { IssueInboxKeyCommand } from "@mam/contracts/mailbox-api.ts";
import { CreateKeyBody, IdParam, type IssuedKey, type KeySummary } from "@mam/contracts/identity-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { IdentityContext } from "../context.ts";
import { activeKeysOfWorkspace, keyOfWorkspace, toKeySummary } from "../read/queries.ts";
import { requireTenantKey, visibleWorkspace } from "./access.ts";
import { execute, type CommandMeta } from "./append.ts";
import { newKey, revokeDraft } from "./issue-key.ts";

/** A wk_ key for one workspace; the plaintext is in this answer and nowhere else. */
export async function issueWorkspaceKey(
  ctx: IdentityContext,
  claims: ScopeClaims,
  workspaceId: unknown,
  body: unknown,
  meta: CommandMeta,
): Promise<IssuedKey> {
  requireTenantKey(claims, "issue keys");
  const input = parseOrThrow(CreateKeyBody, body);
  let issued: ReturnType<typeof newKey> | undefined;
  return execute(
    ctx,
    claims.tenantId,
    meta,
    async (tx) => {
      const w = await visibleWorkspace(tx, claims, workspaceId);
      issued = newKey(ctx, "workspace", { tenantId: w.tenant_id, workspaceId: w.workspace_id }, input.name ?? null);
      return [issued.draft];
    },
    async (tx) => {
      const k = (await keyOfWorkspace(tx, String(workspaceId), issued!.keyId))!;
      return { ...toKeySummary(k), key: issued!.plaintext };
    },
  );
}

export async function listWorkspaceKeys(ctx: IdentityContext, claims: ScopeClaims, workspaceId: unknown): Promise<{ keys: KeySummary[] }> {
  requireTenantKey(claims, "list keys");
  const w = await visibleWorkspace(ctx.db, claims, workspaceId);
  return { keys: (await activeKeysOfWorkspace(ctx.db, w.workspace_id)).map(toKeySummary) };
}

/** Revoking is idempotent: revoking a revoked key answers the same and records nothing new. */
export async function revokeWorkspaceKey(
  ctx: IdentityContext,
  claims: ScopeClaims,
  workspaceId: unknown,
  keyId: unknown,
  meta: CommandMeta,
): Promise<{ revoked: true; id: string }> {
  requireTenantKey(claims, "revoke keys");
  const id = parseOrThrow(IdParam, keyId, "key id");
  return execute(
    ctx,
    claims.tenantId,
    meta,
    async (tx) => {
      const w = await visibleWorkspace(tx, claims, workspaceId);
      const k = await keyOfWorkspace(tx, w.workspace_id, id);
      if (!k) throw notFound("Key");
      return k.revoked_at ? [] : [revokeDraft(k, w.workspace_id, "revoked")];
    },
    async () => ({ revoked: true as const, id }),
  );
}

/**
 * The ak_ key of an inbox the mailbox is creating, on behalf of the caller (whose token
 * the mailbox forwards): only a tenant or workspace key that sees the workspace may.
 */
export async function issueInboxKey(
  ctx: IdentityContext,
  claims: ScopeClaims,
  body: unknown,
  meta: CommandMeta,
): Promise<{ id: string; key: string; prefix: string }> {
  if (claims.kind !== "tenant" && claims.kind !== "workspace") throw new AppError("FORBIDDEN", "Only tk_ and wk_ keys create inboxes");
  const cmd = parseOrThrow(IssueInboxKeyCommand, body);
  let issued: ReturnType<typeof newKey> | undefined;
  return execute(
    ctx,
    claims.tenantId!,
    meta,
    async (tx) => {
      const w = await visibleWorkspace(tx, claims, cmd.workspaceId);
      issued = newKey(ctx, "inbox", { tenantId: w.tenant_id, workspaceId: w.workspace_id, inboxId: cmd.inboxId }, "Inbox key");
      return [issued.draft];
    },
    async () => ({ id: issued!.keyId, key: issued!.plaintext, prefix: issued!.prefix }),
  );
}
