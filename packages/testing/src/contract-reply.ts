import type { ReplyOf, RpcContract } from "@mam/contracts/rpc-contract.ts";
import type { ApiResponse } from "./http.ts";

/**
 * The body of a successful API answer, checked against and typed by the contract of the
 * route that gave it: a test that reads a renamed field fails to compile, and a reply that
 * drifted from its contract fails the test.
 */
export function replyOf<C extends RpcContract>(contract: C, r: ApiResponse, expectedStatus = 200): ReplyOf<C> {
  if (r.status !== expectedStatus) throw new Error(`${contract.subject}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  const parsed = contract.reply.safeParse(r.body);
  if (!parsed.success) throw new Error(`${contract.subject}: the reply does not match its contract: ${parsed.error.message}`);
  return parsed.data as ReplyOf<C>;
}
