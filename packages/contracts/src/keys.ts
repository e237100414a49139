import { z } from "zod";

export const KeyKind = z.enum(["super_admin", "tenant", "workspace", "inbox"]);
export type KeyKind = z.infer<typeof KeyKind>;

export const keyPrefixOf: Record<KeyKind, string> = {
  super_admin: "sa_",
  tenant: "tk_",
  workspace: "wk_",
  inbox: "ak_",
};

/** Length of the non-secret prefix shown in listings, e.g. `wk_AbC123`. */
export const SHOWN_PREFIX_LENGTH = 9;

/** What the gateway learns about a caller from its key: who it is and how far it sees. */
export const Principal = z.object({
  keyId: z.uuid(),
  kind: KeyKind,
  tenantId: z.uuid().nullable(),
  workspaceId: z.uuid().nullable(),
  inboxId: z.uuid().nullable(),
});
export type Principal = z.infer<typeof Principal>;

/** What identity answers the gateway for a key's hash: null for a key it does not know. */
export const ResolvedKey = z.object({ principal: Principal.nullable() });

/** `GET /v1/me`: what the key resolves to; `tenantId` is absent only for the operator. */
export const Me = z
  .object({
    keyId: z.uuid(),
    kind: KeyKind,
    tenantId: z.uuid().optional(),
    workspaceId: z.uuid().optional(),
    inboxId: z.uuid().optional(),
  })
  .meta({ id: "Me" });
export type Me = z.infer<typeof Me>;
