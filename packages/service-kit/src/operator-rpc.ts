import { z } from "zod";
import type { Bus } from "@mam/bus/connection.ts";
import type { RpcServer } from "@mam/bus/rpc.ts";
import { call } from "@mam/bus/rpc-client.ts";
import { AppError } from "@mam/contracts/errors.ts";
import type { Principal } from "@mam/contracts/keys.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import { hashKey, KEY_SHAPE } from "@mam/scope/key-hash.ts";

/**
 * Operator requests over NATS (`mam` the CLI): read-model rebuilds, the tenant list. No HTTP
 * route leads to them, so no scope token is minted for them; the caller presents the
 * operator's sa_ key itself, which the service resolves with identity (as the gateway
 * does a presented key) and accepts only when it is the operator's. The key is the guard,
 * not NATS permissions: on a locked-down server the admin user and the gateway may publish to
 * these subjects, and so may a service allowed another's requests (the mailbox publishes to
 * `svc.identity.>`, which holds identity's operator subjects too).
 */
export { operatorSubject } from "@mam/contracts/operator.ts";

/** Every operator request carries the operator's key. */
export const OperatorRequest = z.object({ operatorKey: z.string() });

/** Turns a key's hash into its principal (null when unknown or revoked). */
export type KeyResolver = (keyHash: string) => Promise<Principal | null>;

/** Asks identity, as the gateway does; identity's own handlers pass a local resolver instead. */
export const resolveWithIdentity =
  (bus: Bus): KeyResolver =>
  async (keyHash) => {
    const reply = await call(bus, RpcContracts.identity.keyResolve, { keyHash });
    if (!reply.ok) throw AppError.fromBody(reply.error);
    return reply.body.principal;
  };

/** The operator's principal, or the refusal a gateway would give the same key. */
export async function authoriseOperator(key: string, resolve: KeyResolver): Promise<Principal> {
  const principal = KEY_SHAPE.test(key) ? await resolve(hashKey(key)) : null;
  if (!principal) throw new AppError("UNAUTHORIZED", "Invalid API key");
  if (principal.kind !== "super_admin") throw new AppError("FORBIDDEN", "Only the operator key (sa_) may do this");
  return principal;
}

/**
 * Serves an operator request: the body is parsed with `schema` (which includes
 * OperatorRequest's field), the key authorised, then `handler` runs.
 */
export function serveOperator<S extends z.ZodObject>(
  rpc: RpcServer,
  subject: string,
  schema: S,
  resolve: KeyResolver,
  handler: (request: z.output<S>, operator: Principal) => Promise<{ status: number; body: unknown }>,
): void {
  rpc.handlePublic(subject, async (body) => {
    const r = schema.extend(OperatorRequest.shape).safeParse(body);
    if (!r.success)
      throw new AppError("VALIDATION_ERROR", `Invalid operator request: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    const operator = await authoriseOperator((r.data as { operatorKey: string }).operatorKey, resolve);
    return handler(r.data as z.output<S>, operator);
  });
}
