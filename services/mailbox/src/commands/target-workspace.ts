import { AppError } from "@mam/contracts/errors.ts";
import type { Workspace } from "@mam/contracts/identity-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import type { MailboxContext } from "../context.ts";
import { askIdentity } from "./identity-client.ts";

export interface Caller {
  claims: ScopeClaims;
  token: string;
  requestId: string;
}

/**
 * Where a create lands: a wk_ key's own workspace; for a tk_ key the `workspaceId` it
 * names (checked with identity, so another tenant's is a 404) or its Default workspace.
 */
export async function targetWorkspace(ctx: MailboxContext, caller: Caller, requested: string | undefined): Promise<Workspace> {
  const { claims } = caller;
  if (claims.kind !== "tenant" && claims.kind !== "workspace") throw new AppError("FORBIDDEN", "Only tk_ and wk_ keys can create this");
  if (claims.kind === "workspace") {
    const own = (claims.workspaces as string[])[0]!;
    if (requested && requested !== own) throw new AppError("FORBIDDEN", "workspaceId can be given with a tenant key (tk_) only");
    return askIdentity(ctx, RpcContracts.identity.workspaceGet, { workspaceId: own }, caller);
  }
  let id = requested;
  if (!id) id = (await askIdentity(ctx, RpcContracts.identity.tenantGet, {}, caller)).defaultWorkspaceId;
  return askIdentity(ctx, RpcContracts.identity.workspaceGet, { workspaceId: id }, caller);
}
