import { z } from "zod";
import { ErrorBody } from "./errors.ts";

/** What every command or query replies with over NATS. */
export const RpcReply = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), status: z.number().int(), body: z.unknown() }),
  z.object({ ok: z.literal(false), error: ErrorBody }),
]);
export type RpcReply = z.infer<typeof RpcReply>;
