import { z } from "zod";

/**
 * Machine-readable error codes: the fixed public set of myagentmail (Decisions item 6),
 * plus UNAVAILABLE (503, with Retry-After): a database or the message bus cannot be reached
 * right now. Unlike INTERNAL it is not a bug, and retrying later works.
 */
export const ErrorCode = z.enum([
  "VALIDATION_ERROR",
  "UNAUTHORIZED",
  "FORBIDDEN",
  "NOT_FOUND",
  "CONFLICT",
  "USERNAME_TAKEN",
  "PLAN_LIMIT_REACHED",
  "INBOX_PAUSED",
  "RATE_LIMITED",
  "PAYLOAD_TOO_LARGE",
  "SMTP_ERROR",
  "UNAVAILABLE",
  "INTERNAL",
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

export const httpStatusOf: Record<ErrorCode, number> = {
  VALIDATION_ERROR: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  USERNAME_TAKEN: 409,
  PLAN_LIMIT_REACHED: 403,
  INBOX_PAUSED: 403,
  RATE_LIMITED: 429,
  PAYLOAD_TOO_LARGE: 413,
  SMTP_ERROR: 502,
  UNAVAILABLE: 503,
  INTERNAL: 500,
};

/** What a client sees for an error: its code, and the status that code stands for. */
export function publicErrorBody(body: ErrorBody): { status: number; body: ErrorBody } {
  return { status: httpStatusOf[body.code], body };
}

export const ErrorBody = z.object({
  error: z.string(),
  code: ErrorCode,
  fields: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  /** PLAN_LIMIT_REACHED: the limit reached (e.g. "webhooks"), how much is in use, and the most allowed. */
  limit: z.string().optional(),
  usage: z.number().int().optional(),
  max: z.number().int().optional(),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

/** What a PLAN_LIMIT_REACHED refusal says beside its message. */
export interface LimitReached {
  limit: string;
  usage: number;
  max: number;
}

/** A failure the core raises; each edge (HTTP, RPC) maps it in one place. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly fields?: { path: string; message: string }[],
    readonly limitReached?: LimitReached,
  ) {
    super(message);
    this.name = "AppError";
  }

  /** The same error again, from the body a service answered with. */
  static fromBody(b: ErrorBody): AppError {
    const reached = b.limit !== undefined && b.usage !== undefined && b.max !== undefined ? { limit: b.limit, usage: b.usage, max: b.max } : undefined;
    return new AppError(b.code, b.error, b.fields, reached);
  }

  toBody(): ErrorBody {
    return {
      error: this.message,
      code: this.code,
      ...(this.fields && { fields: this.fields }),
      ...(this.limitReached && { limit: this.limitReached.limit, usage: this.limitReached.usage, max: this.limitReached.max }),
    };
  }
}

/** 403 PLAN_LIMIT_REACHED naming the limit, its usage and its maximum. */
export const limitReached = (message: string, reached: LimitReached) => new AppError("PLAN_LIMIT_REACHED", message, undefined, reached);

export const notFound = (what = "Resource") => new AppError("NOT_FOUND", `${what} not found`);

/** Turns zod issues into one readable message and a list of the offending fields. */
export function validationError(error: z.ZodError, where = "body"): AppError {
  const fields = error.issues.map((i) => ({
    path: i.path.length ? i.path.map(String).join(".") : where,
    message: i.message,
  }));
  const summary = fields.map((f) => `${f.path}: ${f.message}`).join("; ");
  return new AppError("VALIDATION_ERROR", `Invalid ${where}: ${summary}`, fields);
}

export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, where = "body"): z.infer<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw validationError(r.error, where);
  return r.data;
}
