import { AppError, parseOrThrow } from "@mam/contracts/errors.ts";
import { IdParam, type RotatedKey } from "@mam/contracts/identity-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { Kysely } from "kysely";
import type { IdentityContext } from "../context.ts";
import { NO_WORKSPACE, type IdentityDb } from "../db/schema.ts";
import { keyOfWorkspace } from "../read/queries.ts";
import { execute, type CommandMeta } from "./append.ts";
import { decideKey, type ReissueTenantKey, type RevokeTenantKey, type RotateTenantKey } from "./decisions/keys.ts";
import { newKey } from "./issue-key.ts";
import { loadTenant } from "./load.ts";

/** The new tk_ key as its command's answer: the plaintext is here and nowhere else. */
async function rotated(tx: Kysely<IdentityDb>, keyId: string, plaintext: string): Promise<RotatedKey> {
  const row = (await keyOfWorkspace(tx, NO_WORKSPACE, keyId))!;
  return { id: row.key_id, key: plaintext, prefix: row.prefix, createdAt: new Date(row.created_at).toISOString() };
}

/**
 * A tk_ key replaces itself. The old key is revoked in the same transaction as the new one
 * is issued, and every gateway drops it on the KeyRevoked event.
 */
export async function rotateTenantKey(ctx: IdentityContext, claims: ScopeClaims, meta: CommandMeta): Promise<RotatedKey> {
  if (claims.kind !== "tenant" || !claims.tenantId) throw new AppError("FORBIDDEN", "Only a tenant master key (tk_) can rotate itself");
  const { plaintext, key } = newKey(ctx, "tenant");
  const command: RotateTenantKey = { type: "RotateTenantKey", claims, key };
  const tenantId = claims.tenantId;
  return execute(ctx, tenantId, meta, {
    load: (tx) => loadTenant(tx, tenantId, "active"),
    decide: (state) => decideKey(command, state),
    answer: (tx) => rotated(tx, key.keyId, plaintext),
  });
}

/** Every live tk_ key of the tenant revoked, one new one issued (the operator, or the tenant's own tk_ key). */
export async function reissueTenantKey(ctx: IdentityContext, claims: ScopeClaims, tenantId: unknown, meta: CommandMeta): Promise<RotatedKey> {
  const { plaintext, key } = newKey(ctx, "tenant");
  const command: ReissueTenantKey = { type: "ReissueTenantKey", claims, tenantId: parseOrThrow(IdParam, tenantId, "tenant id"), key };
  return execute(ctx, command.tenantId, meta, {
    load: (tx) => loadTenant(tx, command.tenantId, "active"),
    decide: (state) => decideKey(command, state),
    answer: (tx) => rotated(tx, key.keyId, plaintext),
  });
}

/** Idempotent, as every revocation: revoking a revoked key answers the same and records nothing new. */
export async function revokeTenantKey(
  ctx: IdentityContext,
  claims: ScopeClaims,
  ref: { tenantId: unknown; keyId: unknown },
  meta: CommandMeta,
): Promise<{ revoked: true; id: string }> {
  const command: RevokeTenantKey = {
    type: "RevokeTenantKey",
    claims,
    tenantId: parseOrThrow(IdParam, ref.tenantId, "tenant id"),
    keyId: parseOrThrow(IdParam, ref.keyId, "key id"),
  };
  return execute(ctx, command.tenantId, meta, {
    load: (tx) => loadTenant(tx, command.tenantId, { keyId: command.keyId }),
    decide: (state) => decideKey(command, state),
    answer: async () => ({ revoked: true as const, id: command.keyId }),
  });
}
