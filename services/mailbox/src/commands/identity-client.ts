import { callOrThrow } from "@mam/bus/rpc-client.ts";
import type { ReplyOf, RequestIn, RpcContract } from "@mam/contracts/rpc-contract.ts";
import { serviceOfSubject, type ScopeClaims } from "@mam/contracts/scope.ts";
import type { MailboxContext } from "../context.ts";

/**
 * Asks identity on the caller's behalf, with the caller's own scope token; typed by the
 * contract. That token was minted for the mailbox: identity takes it only when the gateway
 * named identity after the mailbox in its audience (the routes listed in the gateway's
 * `consultsIdentity`), and only for the requests in `identityOnBehalf`.
 */
export function askIdentity<C extends RpcContract>(
  ctx: MailboxContext,
  contract: C,
  body: RequestIn<C>,
  caller: { claims: ScopeClaims; token: string; requestId: string },
): Promise<ReplyOf<C>> {
  // Identity would refuse it as unauthorized, and the client would be told its key is bad:
  // say instead, in our own logs, which route is missing from the gateway's list.
  if (!caller.claims.aud.slice(1).includes(serviceOfSubject(contract.subject))) {
    throw new Error(
      `${contract.subject} asked with a token whose audience (${caller.claims.aud.join(", ")}) does not name identity: add the route to consultsIdentity`,
    );
  }
  return callOrThrow(ctx.bus, contract, body, { scope: caller.token, requestId: caller.requestId });
}
