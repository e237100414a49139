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
