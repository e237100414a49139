import {
  CreateKeyBody,
  CreateTenantBody,
  CreateWorkspaceBody,
  InboxKey,
  IssueKeyCommand,
  IssuedKey,
  KeyList,
  KeyRef,
  KeyRevoked,
  ListKeysRequest,
  ListWorkspacesRequest,
  OwnTenant,
  ResolveKeyQuery,
  RotatedKey,
  TenantCreated,
  TenantKeyRef,
  TenantRef,
  Workspace,
  WorkspaceList,
  WorkspaceRef,
} from "./identity-api.ts";
import { ResolvedKey } from "./keys.ts";
import { IssueInboxKeyCommand } from "./mailbox-api.ts";
import { Deleted, NoParams } from "./results.ts";
import { contract, type RpcContract } from "./rpc-contract.ts";

/** Identity's request subjects, `svc.identity.<resource>.<verb>`, with what each takes and answers. */
export const IdentityRpc = {
  tenantCreate: contract("svc.identity.tenant.create", CreateTenantBody, TenantCreated),
  /** Public (no scope yet): the gateway turns a presented key into a principal. */
  keyResolve: contract("svc.identity.key.resolve", ResolveKeyQuery, ResolvedKey),
  workspaceCreate: contract("svc.identity.workspace.create", CreateWorkspaceBody, Workspace),
  workspaceList: contract("svc.identity.workspace.list", ListWorkspacesRequest, WorkspaceList),
  workspaceGet: contract("svc.identity.workspace.get", WorkspaceRef, Workspace),
  workspaceDelete: contract("svc.identity.workspace.delete", WorkspaceRef, Deleted),
  keyIssue: contract("svc.identity.key.issue", IssueKeyCommand.extend({ body: CreateKeyBody }), IssuedKey),
  keyList: contract("svc.identity.key.list", ListKeysRequest, KeyList),
  keyRevoke: contract("svc.identity.key.revoke", KeyRef, KeyRevoked),
  /** Internal: the mailbox asks for the ak_ key of an inbox it is creating. */
  keyIssueForInbox: contract("svc.identity.key.issue-for-inbox", IssueInboxKeyCommand, InboxKey),
  /** Internal: the mailbox revokes an inbox key it asked for and did not use (a lost race). */
  keyDiscardForInbox: contract("svc.identity.key.discard-for-inbox", KeyRef, KeyRevoked),
  tenantGet: contract("svc.identity.tenant.get", NoParams, OwnTenant),
  /** A tk_ key replaces itself: a new tk_ key, shown once; the calling key is revoked. */
  tenantKeyRotate: contract("svc.identity.tenant-key.rotate", NoParams, RotatedKey),
  /** The operator (or the tenant's own tk_ key) revokes every live tk_ key of a tenant and issues one new one. */
  tenantKeyReissue: contract("svc.identity.tenant-key.reissue", TenantRef, RotatedKey),
  /** The operator (or the tenant's own tk_ key) revokes one tk_ key of a tenant. */
  tenantKeyRevoke: contract("svc.identity.tenant-key.revoke", TenantKeyRef, KeyRevoked),
};

/**
 * What identity answers when another service asks on a caller's behalf, forwarding the
 * token the gateway minted for that service (with identity named after it in `aud`):
 * the mailbox placing an inbox or a domain in a workspace, and the inbox's ak_ key. Every
 * other request needs a token minted for identity itself, so a token forwarded or stolen
 * from a mailbox request cannot, say, issue wk_ keys or delete a workspace.
 */
export const identityOnBehalf: ReadonlySet<RpcContract> = new Set<RpcContract>([
  IdentityRpc.workspaceGet,
  IdentityRpc.tenantGet,
  IdentityRpc.keyIssueForInbox,
  IdentityRpc.keyDiscardForInbox,
]);
