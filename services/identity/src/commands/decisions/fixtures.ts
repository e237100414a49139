import type { IdentityEvent, KeyRevokedReason } from "@mam/contracts/identity-events.ts";
import type { KeyKind } from "@mam/contracts/keys.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { hashKey } from "@mam/scope/key-hash.ts";
import { keyIssued as draftOfKey, type Draft, type NewKey } from "./drafts.ts";

/** Histories and callers for the decisions' given/when/then tests. */

export const ids = {
  acme: "01900000-0000-7000-8000-00000000a001",
  other: "01900000-0000-7000-8000-00000000a002",
  acmeDefault: "01900000-0000-7000-8000-00000000b001",
  acmeSales: "01900000-0000-7000-8000-00000000b002",
  otherDefault: "01900000-0000-7000-8000-00000000b003",
  newWorkspace: "01900000-0000-7000-8000-00000000b004",
  inbox: "01900000-0000-7000-8000-00000000c001",
  otherInbox: "01900000-0000-7000-8000-00000000c002",
  tenantKey: "01900000-0000-7000-8000-00000000d001",
  salesKey: "01900000-0000-7000-8000-00000000d002",
  salesKey2: "01900000-0000-7000-8000-00000000d003",
  defaultKey: "01900000-0000-7000-8000-00000000d004",
  inboxKey: "01900000-0000-7000-8000-00000000d005",
  operatorKey: "01900000-0000-7000-8000-00000000d006",
  operatorKey2: "01900000-0000-7000-8000-00000000d007",
  newKey: "01900000-0000-7000-8000-00000000d0ff",
} as const;

/** A key as `newKey` makes it, from a known plaintext. */
export const material = (keyId: string, plaintext: string): NewKey => ({ keyId, prefix: plaintext.slice(0, 9), keyHash: hashKey(plaintext) });

export const tenantCreated = (tenantId: string, defaultWorkspaceId: string, name = "Acme"): IdentityEvent => ({
  type: "TenantCreated",
  schemaVersion: 1,
  data: { tenantId, name, defaultWorkspaceId },
});

export const workspaceCreated = (tenantId: string, workspaceId: string, slug: string, isDefault = false, name = slug): IdentityEvent => ({
  type: "WorkspaceCreated",
  schemaVersion: 1,
  data: { workspaceId, tenantId, name, slug, isDefault },
});

export const workspaceDeleted = (tenantId: string, workspaceId: string): IdentityEvent => ({
  type: "WorkspaceDeleted",
  schemaVersion: 1,
  data: { workspaceId, tenantId },
});

/** The event a decision makes for this key (the drafts' own builder, without its envelope fields). */
export const keyIssued = (
  key: NewKey,
  kind: KeyKind,
  at: { tenantId: string | null; workspaceId: string | null; inboxId?: string | null },
  name: string | null,
): IdentityEvent => draftOfKey(key, kind, { ...at, inboxId: at.inboxId ?? null }, name).event;

export const keyRevoked = (keyId: string, reason: KeyRevokedReason = "revoked"): IdentityEvent => ({
  type: "KeyRevoked",
  schemaVersion: 1,
  data: { keyId, reason },
});

/** Acme (Default and Sales workspaces) and another tenant, as created. */
export const twoTenants: IdentityEvent[] = [
  tenantCreated(ids.acme, ids.acmeDefault),
  workspaceCreated(ids.acme, ids.acmeDefault, "default", true),
  keyIssued(material(ids.tenantKey, "tk_acme"), "tenant", { tenantId: ids.acme, workspaceId: null }, "Tenant master key"),
  workspaceCreated(ids.acme, ids.acmeSales, "sales"),
  tenantCreated(ids.other, ids.otherDefault, "Other"),
  workspaceCreated(ids.other, ids.otherDefault, "default", true),
];

const claims = (kind: KeyKind, tenantId: string | null, workspaces: ScopeClaims["workspaces"], kid: string = ids.tenantKey): ScopeClaims => ({
  v: 1,
  aud: ["identity"],
  kid,
  kind,
  tenantId,
  workspaces,
  inboxId: null,
  iat: 0,
  exp: 60,
});

export const tenantKeyOf = (tenantId: string) => claims("tenant", tenantId, "*");
export const workspaceKeyOf = (tenantId: string, workspaceId: string) => claims("workspace", tenantId, [workspaceId]);
export const operatorKey = () => claims("super_admin", null, [], ids.operatorKey);

/** The test helper sees decisions' drafts as events only; ours carry where each is filed. */
export const filed = (drafts: { event: IdentityEvent }[]) =>
  (drafts as Draft[]).map((d) => ({ tenantId: d.tenantId, workspaceId: d.workspaceId, aggregateId: d.aggregateId, aggregateVersion: d.aggregateVersion }));
