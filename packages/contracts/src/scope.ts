import { z } from "zod";
import { KeyKind } from "./keys.ts";

/** Longest lifetime a scope token may have, in seconds. */
export const SCOPE_TOKEN_MAX_TTL_S = 60;

/**
 * Claims of a scope token. `workspaces` is "*" for a tenant key (every workspace of
 * the tenant, including ones created after the token) and a list otherwise.
 */
export const ScopeClaims = z.object({
  v: z.literal(1),
  kid: z.uuid(),
  kind: KeyKind,
  tenantId: z.uuid().nullable(),
  workspaces: z.union([z.literal("*"), z.array(z.uuid())]),
  inboxId: z.uuid().nullable(),
  iat: z.number().int(),
  exp: z.number().int(),
});
export type ScopeClaims = z.infer<typeof ScopeClaims>;

/** NATS header names carried by every command and query. */
export const Headers = {
  scope: "Mam-Scope",
  requestId: "Mam-Request-Id",
  /** A request or reply too large for one NATS message: its name in the object-store bucket. */
  spilled: "Mam-Spilled",
} as const;
