import { z } from "zod";
import { PaginationOut, pageFields } from "./pagination.ts";

const Name = z.string().trim().min(1, "must not be empty").max(200, "must be at most 200 characters");
const ControlFree = (s: string) => !/[\u0000-\u001f\u007f]/.test(s);

export const Slug = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, "must be lowercase letters, digits and single hyphens");

export const CreateTenantBody = z
  .object({
    name: Name.refine(ControlFree, "must not contain control characters"),
  })
  .meta({ id: "CreateTenantBody" });
export const CreateWorkspaceBody = z
  .object({
    name: Name.refine(ControlFree, "must not contain control characters"),
    slug: Slug.optional(),
  })
  .meta({ id: "CreateWorkspaceBody" });
export const CreateKeyBody = z
  .object({
    name: Name.refine(ControlFree, "must not contain control characters").optional(),
  })
  .meta({ id: "CreateKeyBody" });

export const IdParam = z.uuid("must be a UUID");

export const Workspace = z
  .object({
    id: z.uuid(),
    tenantId: z.uuid(),
    name: z.string(),
    slug: z.string(),
    isDefault: z.boolean(),
    inboxCount: z.number().int(),
    domainCount: z.number().int(),
    createdAt: z.string(),
  })
  .meta({ id: "Workspace" });
export type Workspace = z.infer<typeof Workspace>;

export const KeySummary = z
  .object({
    id: z.uuid(),
    prefix: z.string(),
    name: z.string().nullable(),
    workspaceId: z.uuid().nullable(),
    createdAt: z.string(),
  })
  .meta({ id: "KeySummary" });
export type KeySummary = z.infer<typeof KeySummary>;

/** A key as returned by the request that created it: the only time `key` is shown. */
export const IssuedKey = KeySummary.extend({ key: z.string() }).meta({ id: "IssuedKey" });
export type IssuedKey = z.infer<typeof IssuedKey>;

export const Tenant = z.object({ id: z.uuid(), name: z.string(), createdAt: z.string() }).meta({ id: "Tenant" });
export type Tenant = z.infer<typeof Tenant>;

/** Query bodies sent over NATS by the gateway; the scope token says who asks. */
export const WorkspaceRef = z.object({ workspaceId: z.string() });
export const KeyRef = z.object({ workspaceId: z.string(), keyId: z.string() });
export const TenantRef = z.object({ tenantId: z.string() });
export const TenantKeyRef = z.object({ tenantId: z.string(), keyId: z.string() });
export const IssueKeyCommand = z.object({ workspaceId: z.string(), body: z.unknown() });
export const ResolveKeyQuery = z.object({ keyHash: z.string().regex(/^[0-9a-f]{64}$/) });

/** `POST /v1/tenants`: the tenant, its Default workspace and its tk_ key, shown once. */
export const TenantCreated = z.object({ tenant: Tenant, workspace: Workspace, key: IssuedKey }).meta({ id: "TenantCreated" });
/** The caller's own tenant, as the mailbox asks for it (to name an inbox after it). */
export const OwnTenant = Tenant.extend({ defaultWorkspaceId: z.uuid() });
/**
 * Pages of `GET /v1/workspaces` and a workspace's keys. Both were answered whole before
 * pages: the default limit (1,000) keeps that answer for any tenant of a sensible size.
 */
export const ListWorkspacesQuery = z.object(pageFields(1000, 1000));
export const ListKeysQuery = z.object(pageFields(1000, 1000));
export const ListWorkspacesRequest = z.object({ query: ListWorkspacesQuery });
export const ListKeysRequest = WorkspaceRef.extend({ query: ListKeysQuery });
export const WorkspaceList = z.object({ workspaces: z.array(Workspace), pagination: PaginationOut });
export const KeyList = z.object({ keys: z.array(KeySummary), pagination: PaginationOut });
export const KeyRevoked = z.object({ revoked: z.boolean(), id: z.string() });
/** A tenant's new tk_ key, replacing one or more it revoked: the only time `key` is shown. */
export const RotatedKey = z.object({ id: z.uuid(), key: z.string(), prefix: z.string(), createdAt: z.string() }).meta({ id: "RotatedKey" });
export type RotatedKey = z.infer<typeof RotatedKey>;
/** The ak_ key of a new inbox, for the mailbox to hand out once. */
export const InboxKey = z.object({ id: z.uuid(), key: z.string(), prefix: z.string() });
