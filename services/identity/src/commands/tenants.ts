import { AppError, parseOrThrow } from "@mam/contracts/errors.ts";
import { CreateTenantBody, type IssuedKey, type Tenant, type Workspace } from "@mam/contracts/identity-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { IdentityContext } from "../context.ts";
import { NO_WORKSPACE } from "../db/schema.ts";
import { keyOfWorkspace, liveWorkspace, tenantById, toKeySummary, toTenant, toWorkspace } from "../read/queries.ts";
import { execute, type CommandMeta } from "./append.ts";
import { initial } from "./decisions/state.ts";
import { decideTenant, type CreateTenant } from "./decisions/tenants.ts";
import { newKey } from "./issue-key.ts";

/** Operator only: a tenant, its Default workspace and its tk_ key, shown this once. */
export async function createTenant(
  ctx: IdentityContext,
  claims: ScopeClaims,
  body: unknown,
  meta: CommandMeta,
): Promise<{ tenant: Tenant; workspace: Workspace; key: IssuedKey }> {
  if (claims.kind !== "super_admin") throw new AppError("FORBIDDEN", "Only the operator's sa_ key can create tenants");
  const input = parseOrThrow(CreateTenantBody, body);
  const { plaintext, key } = newKey(ctx, "tenant");
  const command: CreateTenant = { type: "CreateTenant", tenantId: ctx.newId(), defaultWorkspaceId: ctx.newId(), name: input.name, key };
  return execute(ctx, command.tenantId, meta, {
    // A new tenant's ids are fresh: there is nothing to read.
    load: async () => initial(),
    decide: (state) => decideTenant(command, state),
    answer: async (tx) => {
      const t = (await tenantById(tx, command.tenantId))!;
      const w = (await liveWorkspace(tx, command.defaultWorkspaceId))!;
      const k = (await keyOfWorkspace(tx, NO_WORKSPACE, key.keyId))!;
      return { tenant: toTenant(t), workspace: toWorkspace(w), key: { ...toKeySummary(k), key: plaintext } };
    },
  });
}
