import { z } from "zod";
import { parseEventWith, type EventEnvelope } from "./envelope.ts";
import { KeyKind } from "./keys.ts";

export const IDENTITY_CONTEXT = "identity";

export const TenantCreatedV1 = z.object({
  tenantId: z.uuid(),
  name: z.string(),
  defaultWorkspaceId: z.uuid(),
});
export const WorkspaceCreatedV1 = z.object({
  workspaceId: z.uuid(),
  tenantId: z.uuid(),
  name: z.string(),
  slug: z.string(),
  isDefault: z.boolean(),
});
export const WorkspaceDeletedV1 = z.object({
  workspaceId: z.uuid(),
  tenantId: z.uuid(),
});
export const KeyIssuedV1 = z.object({
  keyId: z.uuid(),
  kind: KeyKind,
  name: z.string().nullable(),
  prefix: z.string(),
  /** SHA-256 of the key, hex. The plaintext never leaves the response that created it. */
  keyHash: z.string().regex(/^[0-9a-f]{64}$/),
  tenantId: z.uuid().nullable(),
  workspaceId: z.uuid().nullable(),
  inboxId: z.uuid().nullable(),
});
/** `rotated`: replaced by a new key of the same kind (a tk_ key's rotation, or the operator's re-issue). */
export const KeyRevokedReason = z.enum(["revoked", "workspace_deleted", "rotated"]);
export type KeyRevokedReason = z.infer<typeof KeyRevokedReason>;
export const KeyRevokedV1 = z.object({
  keyId: z.uuid(),
  reason: KeyRevokedReason,
});

/** Versioned payload schemas, by event type then schema version. */
export const identityEventSchemas = {
  TenantCreated: { 1: TenantCreatedV1 },
  WorkspaceCreated: { 1: WorkspaceCreatedV1 },
  WorkspaceDeleted: { 1: WorkspaceDeletedV1 },
  KeyIssued: { 1: KeyIssuedV1 },
  KeyRevoked: { 1: KeyRevokedV1 },
} as const;

export type IdentityEvent =
  | { type: "TenantCreated"; schemaVersion: 1; data: z.infer<typeof TenantCreatedV1> }
  | { type: "WorkspaceCreated"; schemaVersion: 1; data: z.infer<typeof WorkspaceCreatedV1> }
  | { type: "WorkspaceDeleted"; schemaVersion: 1; data: z.infer<typeof WorkspaceDeletedV1> }
  | { type: "KeyIssued"; schemaVersion: 1; data: z.infer<typeof KeyIssuedV1> }
  | { type: "KeyRevoked"; schemaVersion: 1; data: z.infer<typeof KeyRevokedV1> };

export type IdentityEventType = IdentityEvent["type"];
export type IdentityEnvelope = Omit<EventEnvelope, "type" | "schemaVersion" | "data"> & IdentityEvent;

export const parseIdentityEvent = (raw: unknown) => parseEventWith<IdentityEnvelope>(identityEventSchemas, raw);
