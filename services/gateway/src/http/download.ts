import type { Request, Response } from "express";
import { BinaryBody, type RpcReply } from "@mam/contracts/rpc.ts";
import type { Logger } from "@mam/runtime/logger.ts";

/**
 * Sends bytes that arrive in slices: headers (with the whole length) from the first,
 * then each next slice asked for as the client takes them. A slice that fails after the
 * headers went out can only cut the response short: the client sees fewer bytes than
 * Content-Length announced, never a wrong body. A client that goes away stops it.
 */
export async function streamBinary(
  logger: Logger,
  req: Request,
  res: Response,
  status: number,
  first: BinaryBody,
  next: (offset: number) => Promise<RpcReply>,
): Promise<void> {
  const { contentType, filename, size } = first.$binary;
  res.status(status);
  if (filename) res.attachment(filename);
  res.setHeader("Content-Type", contentType);
  res.setHeader("Content-Length", String(size));
  if (req.method === "HEAD") return void res.end();
  const cutShort = (why: Record<string, unknown>) => {
    logger.warn({ requestId: res.locals.requestId, size, ...why }, "download cut short");
    res.destroy();
  };
  let slice = first.$binary;
  try {
    for (;;) {
      const bytes = Buffer.from(slice.base64, "base64");
      const offset = slice.offset + bytes.length;
      if (res.destroyed) return;
      if (!res.write(bytes)) await drained(res);
      if (offset >= size) break;
      if (res.destroyed) return;
      const reply = await next(offset);
      const body = reply.ok ? BinaryBody.safeParse(reply.body) : undefined;
      if (!body?.success || body.data.$binary.offset !== offset || body.data.$binary.size !== size || !body.data.$binary.base64) {
        return cutShort({ offset, error: reply.ok ? "bad slice" : reply.error.code });
      }
      slice = body.data.$binary;
    }
    res.end();
  } catch (err) {
    cutShort({ err });
  }
}

/** Until the response takes more bytes, or is gone; listeners are removed either way. */
function drained(res: Response): Promise<void> {
  if (res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}
