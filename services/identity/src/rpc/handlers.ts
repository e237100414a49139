import type { ContractHandler, RpcContext, RpcServer } from "@mam/bus/rpc.ts";
import { identityOnBehalf } from "@mam/contracts/identity-rpc.ts";
import type { RpcContract } from "@mam/contracts/rpc-contract.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import type { IdentityContext } from "../context.ts";
import type { CommandMeta } from "../commands/append.ts";
import { discardInboxKey, issueInboxKey, issueWorkspaceKey, revokeWorkspaceKey } from "../commands/keys.ts";
import { reissueTenantKey, revokeTenantKey, rotateTenantKey } from "../commands/tenant-keys.ts";
import { createTenant } from "../commands/tenants.ts";
import { createWorkspace, deleteWorkspace } from "../commands/workspaces.ts";
import { listWorkspaceKeys, resolveKey } from "../read/keys.ts";
import { getOwnTenant } from "../read/tenants.ts";
import { getWorkspace, listWorkspaces } from "../read/workspaces.ts";
import { registerOperatorRpc } from "./operator.ts";

const meta = (c: RpcContext): CommandMeta => ({ actor: { type: "key", id: c.claims.kid }, requestId: c.requestId });
const ok = <T>(body: T) => ({ status: 200, body });
const created = <T>(body: T) => ({ status: 201, body });

/** Identity's commands and queries, one contract each: requests arrive parsed, replies are typed. */
export function registerIdentityRpc(rpc: RpcServer, ctx: IdentityContext): void {
  const I = RpcContracts.identity;
  // A token another service forwards on its caller's behalf is good for the few requests in
  // identityOnBehalf (see there), and for nothing else here.
  const server = {
    serve: <C extends RpcContract>(c: C, handler: ContractHandler<C>) => rpc.serve(c, handler, { forwarded: identityOnBehalf.has(c) }),
    servePublic: rpc.servePublic.bind(rpc),
  };
  server.servePublic(I.keyResolve, async (req) => ok(await resolveKey(ctx, req)));
  server.serve(I.tenantCreate, async (req, c) => created(await createTenant(ctx, c.claims, req, meta(c))));
  server.serve(I.workspaceCreate, async (req, c) => created(await createWorkspace(ctx, c.claims, req, meta(c))));
  server.serve(I.workspaceList, async (req, c) => ok(await listWorkspaces(ctx, c.claims, req.query)));
  server.serve(I.workspaceGet, async (req, c) => ok(await getWorkspace(ctx, c.claims, req.workspaceId)));
  server.serve(I.workspaceDelete, async (req, c) => ok(await deleteWorkspace(ctx, c.claims, req.workspaceId, meta(c))));
  server.serve(I.keyIssue, async (req, c) => created(await issueWorkspaceKey(ctx, c.claims, req.workspaceId, req.body, meta(c))));
  server.serve(I.keyList, async (req, c) => ok(await listWorkspaceKeys(ctx, c.claims, req.workspaceId, req.query)));
  server.serve(I.keyIssueForInbox, async (req, c) => created(await issueInboxKey(ctx, c.claims, req, meta(c))));
  server.serve(I.keyDiscardForInbox, async (req, c) => ok(await discardInboxKey(ctx, c.claims, req, meta(c))));
  server.serve(I.tenantGet, async (_req, c) => ok(await getOwnTenant(ctx, c.claims)));
  server.serve(I.keyRevoke, async (req, c) => ok(await revokeWorkspaceKey(ctx, c.claims, req.workspaceId, req.keyId, meta(c))));
  server.serve(I.tenantKeyRotate, async (_req, c) => created(await rotateTenantKey(ctx, c.claims, meta(c))));
  server.serve(I.tenantKeyReissue, async (req, c) => created(await reissueTenantKey(ctx, c.claims, req.tenantId, meta(c))));
  server.serve(I.tenantKeyRevoke, async (req, c) => ok(await revokeTenantKey(ctx, c.claims, req, meta(c))));
  registerOperatorRpc(rpc, ctx);
}
