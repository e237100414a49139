import type { ErrorRequestHandler, Response } from "express";
import { AppError, publicErrorBody, type ErrorBody } from "@mam/contracts/errors.ts";
import { isDependencyOutage } from "@mam/runtime/dependency.ts";
import type { Logger } from "@mam/runtime/logger.ts";

/** A service that is down or restarting is worth retrying shortly. */
const UNAVAILABLE_RETRY_S = 2;

export function sendError(res: Response, error: ErrorBody, retryAfterS?: number): void {
  const { status, body } = publicErrorBody(error);
  const retry = retryAfterS ?? (error.code === "UNAVAILABLE" ? UNAVAILABLE_RETRY_S : undefined);
  if (retry) res.setHeader("Retry-After", String(retry));
  res.status(status).json(body);
}

/**
 * A POST without an Idempotency-Key that the service did not answer in time: it may still be
 * carried out (a send may go out), so the client is not told to retry blindly (no Retry-After)
 * but to check first.
 */
export class UncertainOutcome extends AppError {
  constructor() {
    super(
      "UNAVAILABLE",
      "The service did not answer in time, and the request may still be carried out: check (for a send, the inbox's outbound messages) before repeating it. A request with an Idempotency-Key can be repeated safely.",
    );
  }
}

/**
 * The error a failed forward answers with: an unanswered POST is an UncertainOutcome unless
 * its route honours the Idempotency-Key header and the request carried one (`keyed`): a header
 * a route does not honour, or a body field of that name, counts for nothing.
 */
export function forwardFailure(method: string, keyed: boolean, error: ErrorBody, unanswered: boolean): AppError {
  if (unanswered && method.toLowerCase() === "post" && !keyed) return new UncertainOutcome();
  return AppError.fromBody(error);
}

interface BodyParserError {
  type?: string;
  status?: number;
}

/**
 * The one place where anything thrown on the HTTP edge becomes `{ error, code }`. Anything
 * unexpected is logged here, once, with its stack and the request id; the client gets a
 * fixed body and the request id (in X-Request-Id) to quote, never a message, stack or path.
 */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, _req, res, _next) => {
    if (res.headersSent) {
      // Too late for an error body: end the connection rather than leave the client waiting.
      logger.error({ err, requestId: res.locals.requestId }, "error after the response started");
      res.destroy();
      return;
    }
    if (err instanceof AppError) return sendError(res, err.toBody(), err instanceof UncertainOutcome ? 0 : undefined);
    const type = (err as BodyParserError)?.type;
    if (type === "entity.parse.failed") return sendError(res, { error: "Malformed JSON in request body", code: "VALIDATION_ERROR" });
    if (type === "entity.too.large") return sendError(res, { error: "Request body is too large", code: "PAYLOAD_TOO_LARGE" });
    // The client hung up mid-body (ECONNABORTED): its fault, not an outage; nobody reads the answer.
    if (type === "request.aborted") return sendError(res, { error: "Request body was not sent whole", code: "VALIDATION_ERROR" });
    if (type === "encoding.unsupported" || type === "charset.unsupported" || type === "request.size.invalid") {
      return sendError(res, { error: "Unsupported request body encoding", code: "VALIDATION_ERROR" });
    }
    if (isDependencyOutage(err)) {
      logger.warn({ err: (err as Error).message, requestId: res.locals.requestId }, "dependency unavailable");
      return sendError(res, { error: "Temporarily unavailable: a server this request needs cannot be reached; retry shortly", code: "UNAVAILABLE" });
    }
    logger.error({ err, requestId: res.locals.requestId }, "unhandled error");
    sendError(res, { error: "Internal error", code: "INTERNAL" });
  };
}
