import type { RpcContext, RpcServer } from "@mam/bus/rpc.ts";
import { parseOrThrow } from "@mam/contracts/errors.ts";
import { IssueKeyCommand, KeyRef, WorkspaceRef } from "@mam/contracts/identity-api.ts";
import { Rpc } from "@mam/contracts/subjects.ts";
import type { IdentityContext } from "../context.ts";
import type { CommandMeta } from "../commands/append.ts";
import { issueInboxKey, issueWorkspaceKey, revokeWorkspaceKey } from "../commands/keys.ts";
import { createTenant } from "../commands/tenants.ts";
import { createWorkspace, deleteWorkspace } from "../commands/workspaces.ts";
import { listWorkspaceKeys, resolveKey } from "../read/keys.ts";
import { getOwnTenant } from "../read/tenants.ts";
import { getWorkspace, listWorkspaces } from "../read/workspaces.ts";

const meta = (c: RpcContext): CommandMeta => ({ actor: { type: "key", id: c.claims.kid }, requestId: c.requestId });
const ok = (body: unknown) => ({ status: 200, body });
const created = (body: unknown) => ({ status: 201, body });

/** Identity's commands and queries, one subject each. */
export function registerIdentityRpc(server: RpcServer, ctx: IdentityContext): void {
  const I = Rpc.identity;
  server.handlePublic(I.keyResolve, async (body) => ok(await resolveKey(ctx, body)));
  server.handle(I.tenantCreate, async (body, c) => created(await createTenant(ctx, c.claims, body, meta(c))));
  server.handle(I.workspaceCreate, async (body, c) => created(await createWorkspace(ctx, c.claims, body, meta(c))));
  server.handle(I.workspaceList, async (_body, c) => ok(await listWorkspaces(ctx, c.claims)));
  server.handle(I.workspaceGet, async (body, c) => {
    const { workspaceId } = parseOrThrow(WorkspaceRef, body);
    return ok(await getWorkspace(ctx, c.claims, workspaceId));
  });
  server.handle(I.workspaceDelete, async (body, c) => {
    const { workspaceId } = parseOrThrow(WorkspaceRef, body);
    return ok(await deleteWorkspace(ctx, c.claims, workspaceId, meta(c)));
  });
  server.handle(I.keyIssue, async (body, c) => {
    const cmd = parseOrThrow(IssueKeyCommand, body);
    return created(await issueWorkspaceKey(ctx, c.claims, cmd.workspaceId, cmd.body, meta(c)));
  });
  server.handle(I.keyList, async (body, c) => {
    const { workspaceId } = parseOrThrow(WorkspaceRef, body);
    return ok(await listWorkspaceKeys(ctx, c.claims, workspaceId));
  });
  server.handle(I.keyIssueForInbox, async (body, c) => created(await issueInboxKey(ctx, c.claims, body, meta(c))));
  server.handle(I.tenantGet, async (_body, c) => ok(await getOwnTenant(ctx, c.claims)));
  server.handle(I.keyRevoke, async (body, c) => {
    const ref = parseOrThrow(KeyRef, body);
    return ok(await revokeWorkspaceKey(ctx, c.claims, ref.workspaceId, ref.keyId, meta(c)));
  });
}
