import { z } from "zod";
import { ErrorBody } from "./errors.ts";

/** What every command or query replies with over NATS. */
export const RpcReply = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), status: z.number().int(), body: z.unknown() }),
  z.object({ ok: z.literal(false), error: ErrorBody }),
]);
export type RpcReply = z.infer<typeof RpcReply>;

/** Bytes travel in slices of at most this many: base64 of it stays well under NATS's 1 MB message. */
export const BINARY_CHUNK_BYTES = 512 * 1024;

/**
 * A reply body that is bytes, not JSON (raw messages, attachments): one slice of them, from
 * `offset`, of `size` in all. The gateway streams the slices to the client, asking the same
 * query again with `offset` for each next one.
 */
export const BinaryBody = z.object({
  $binary: z.object({
    base64: z.string(),
    contentType: z.string(),
    filename: z.string().nullable(),
    size: z.number().int().min(0),
    offset: z.number().int().min(0),
  }),
});
export type BinaryBody = z.infer<typeof BinaryBody>;
