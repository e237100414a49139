import { z } from "zod";
import { KeyKind } from "./keys.ts";

/** Longest lifetime a scope token may have, in seconds. */
export const SCOPE_TOKEN_MAX_TTL_S = 60;

/** A service a scope token may be presented to, by the name it serves requests under. */
export const Audience = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/);

/**
 * Who a token is for. The first is the service the gateway called; any after it are
 * services that one may ask on the caller's behalf, forwarding the token. Those accept
 * it only for the requests they serve to such forwarders (see `verify` in
 * packages/scope/src/token.ts), never as if it had been minted for them.
 */
export const ScopeAudience = z.tuple([Audience], Audience).refine((a) => a.length <= 4, "at most 4 audiences");
export type ScopeAudience = [string, ...string[]];

/** The service a request subject (`svc.<service>.<resource>.<verb>`) belongs to: its tokens' audience. */
export function serviceOfSubject(subject: string): string {
  const service = subject.split(".")[1];
  if (!subject.startsWith("svc.") || !service) throw new Error(`not a request subject: ${subject}`);
  return service;
}

/**
 * Claims of a scope token. `workspaces` is "*" for a tenant key (every workspace of
 * the tenant, including ones created after the token) and a list otherwise. `aud`
 * names the services it is for.
 */
export const ScopeClaims = z.object({
  v: z.literal(1),
  aud: ScopeAudience,
  kid: z.uuid(),
  kind: KeyKind,
  tenantId: z.uuid().nullable(),
  workspaces: z.union([z.literal("*"), z.array(z.uuid())]),
  inboxId: z.uuid().nullable(),
  iat: z.number().int(),
  exp: z.number().int(),
});
/**
 * Read-only: a verifier hands one frozen object to every request carrying the same token, so
 * no request may change what another sees.
 */
export type ScopeClaims = Readonly<Omit<z.infer<typeof ScopeClaims>, "aud" | "workspaces">> & {
  readonly aud: Readonly<z.infer<typeof ScopeClaims>["aud"]>;
  readonly workspaces: "*" | readonly string[];
};

/** NATS header names carried by every command and query. */
export const Headers = {
  scope: "Mam-Scope",
  requestId: "Mam-Request-Id",
  /** A request or reply too large for one NATS message: its name in the object-store bucket. */
  spilled: "Mam-Spilled",
} as const;
