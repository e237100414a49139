import { z } from "zod";
import { ErrorBody } from "./errors.ts";

/** What every command or query replies with over NATS. */
export const RpcReply = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), status: z.number().int(), body: z.unknown() }),
  z.object({ ok: z.literal(false), error: ErrorBody }),
]);
export type RpcReply = z.infer<typeof RpcReply>;

/** A reply body that is bytes, not JSON (raw messages, attachments); the gateway sends it as is. */
export const BinaryBody = z.object({
  $binary: z.object({ base64: z.string(), contentType: z.string(), filename: z.string().nullable() }),
});
export type BinaryBody = z.infer<typeof BinaryBody>;
