import { request } from "@mam/bus/rpc.ts";
import { AppError } from "@mam/contracts/errors.ts";
import type { MailboxContext } from "../context.ts";

/** Asks identity on the caller's behalf, with the caller's own scope token. */
export async function askIdentity<T>(ctx: MailboxContext, subject: string, body: unknown, caller: { token: string; requestId: string }): Promise<T> {
  const reply = await request(ctx.bus, subject, body, { scope: caller.token, requestId: caller.requestId });
  if (!reply.ok) throw new AppError(reply.error.code, reply.error.error, reply.error.fields);
  return reply.body as T;
}
