import { AppError, parseOrThrow } from "@mam/contracts/errors.ts";
import { CreateKeyBody, IdParam, type IssuedKey } from "@mam/contracts/identity-api.ts";
import { IssueInboxKeyCommand } from "@mam/contracts/mailbox-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { IdentityContext } from "../context.ts";
import { requireTenantKey } from "../read/access.ts";
import { keyOfWorkspace, toKeySummary } from "../read/queries.ts";
import { execute, type CommandMeta } from "./append.ts";
import { decideKey, type DiscardInboxKey, type IssueInboxKey, type IssueWorkspaceKey, type RevokeWorkspaceKey } from "./decisions/keys.ts";
import { newKey } from "./issue-key.ts";
import { loadWorkspace } from "./load.ts";

/** A wk_ key for one workspace; the plaintext is in this answer and nowhere else. */
export async function issueWorkspaceKey(ctx: IdentityContext, claims: ScopeClaims, workspaceId: unknown, body: unknown, meta: CommandMeta): Promise<IssuedKey> {
  requireTenantKey(claims, "issue keys");
  const input = parseOrThrow(CreateKeyBody, body);
  const { plaintext, key } = newKey(ctx, "workspace");
  const command: IssueWorkspaceKey = {
    type: "IssueWorkspaceKey",
    claims,
    workspaceId: parseOrThrow(IdParam, workspaceId, "workspace id"),
    name: input.name ?? null,
    key,
  };
  return execute(ctx, claims.tenantId, meta, {
    load: (tx) => loadWorkspace(tx, command.workspaceId, "none"),
    decide: (state) => decideKey(command, state),
    answer: async (tx) => ({ ...toKeySummary((await keyOfWorkspace(tx, command.workspaceId, key.keyId))!), key: plaintext }),
  });
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
  const command: RevokeWorkspaceKey = { type: "RevokeWorkspaceKey", claims, workspaceId: parseOrThrow(IdParam, workspaceId, "workspace id"), keyId: id };
  return execute(ctx, claims.tenantId, meta, {
    load: (tx) => loadWorkspace(tx, command.workspaceId, { keyId: id }),
    decide: (state) => decideKey(command, state),
    answer: async () => ({ revoked: true as const, id }),
  });
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
  const input = parseOrThrow(IssueInboxKeyCommand, body);
  const { plaintext, key } = newKey(ctx, "inbox");
  const command: IssueInboxKey = { type: "IssueInboxKey", claims, workspaceId: input.workspaceId, inboxId: input.inboxId, key };
  return execute(ctx, claims.tenantId!, meta, {
    load: (tx) => loadWorkspace(tx, command.workspaceId, "none"),
    decide: (state) => decideKey(command, state),
    answer: async () => ({ id: key.keyId, key: plaintext, prefix: key.prefix }),
  });
}

/** Internal: the mailbox revokes an inbox key it asked for and did not use (see DiscardInboxKey). */
export async function discardInboxKey(
  ctx: IdentityContext,
  claims: ScopeClaims,
  ref: { workspaceId: string; keyId: string },
  meta: CommandMeta,
): Promise<{ revoked: true; id: string }> {
  if (claims.kind !== "tenant" && claims.kind !== "workspace") throw new AppError("FORBIDDEN", "Only tk_ and wk_ keys create inboxes");
  const command: DiscardInboxKey = {
    type: "DiscardInboxKey",
    claims,
    workspaceId: parseOrThrow(IdParam, ref.workspaceId, "workspace id"),
    keyId: parseOrThrow(IdParam, ref.keyId, "key id"),
  };
  return execute(ctx, claims.tenantId!, meta, {
    load: (tx) => loadWorkspace(tx, command.workspaceId, { keyId: command.keyId }),
    decide: (state) => decideKey(command, state),
    answer: async () => ({ revoked: true as const, id: command.keyId }),
  });
}
