import { callOrThrow } from "@mam/bus/rpc.ts";
import type { ReplyOf, RequestIn, RpcContract } from "@mam/contracts/rpc-contract.ts";
import type { MailboxContext } from "../context.ts";

/** Asks identity on the caller's behalf, with the caller's own scope token; typed by the contract. */
export function askIdentity<C extends RpcContract>(
  ctx: MailboxContext,
  contract: C,
  body: RequestIn<C>,
  caller: { token: string; requestId: string },
): Promise<ReplyOf<C>> {
  return callOrThrow(ctx.bus, contract, body, { scope: caller.token, requestId: caller.requestId });
}
