import { z } from "zod";
import { validationError } from "./errors.ts";

/**
 * A request subject with what it is asked and what it answers: the one definition the
 * gateway's routes, the services' handlers and the tests take their types from.
 */
export interface RpcContract<S extends string = string, Req extends z.ZodObject = z.ZodObject, Rep extends z.ZodType = z.ZodType> {
  readonly subject: S;
  readonly request: Req;
  readonly reply: Rep;
  /** How a refusal of the request names it: "query" for queries built from a query string. */
  readonly invalid: "body" | "query";
}

export function contract<const S extends string, Req extends z.ZodObject, Rep extends z.ZodType>(
  subject: S,
  request: Req,
  reply: Rep,
  invalid: "body" | "query" = "body",
): RpcContract<S, Req, Rep> {
  return { subject, request, reply, invalid };
}

/** What a caller sends (before defaults and coercions). */
export type RequestIn<C extends RpcContract> = z.input<C["request"]>;
/** What a handler receives, parsed. */
export type RequestOf<C extends RpcContract> = z.output<C["request"]>;
/** What a handler answers and a caller gets back. */
export type ReplyOf<C extends RpcContract> = z.output<C["reply"]>;

/**
 * Parses a request with its contract. Fields of the client's body or query are named as the
 * client sent them (`username`, not `body.username`), as the services' own checks name them.
 */
export function parseRequest<C extends RpcContract>(c: C, raw: unknown): RequestOf<C> {
  const r = c.request.safeParse(raw);
  if (r.success) return r.data as RequestOf<C>;
  const inner = (key: "body" | "query") => r.error.issues.length > 0 && r.error.issues.every((i) => i.path[0] === key);
  const part = inner("body") ? "body" : inner("query") ? "query" : undefined;
  if (!part) throw validationError(r.error, c.invalid);
  const issues = r.error.issues.map((i) => ({ ...i, path: i.path.slice(1) }));
  throw validationError(new z.ZodError(issues), part);
}
