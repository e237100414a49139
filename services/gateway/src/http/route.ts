import type { Request } from "express";
import type { z } from "zod";
import { DomainKey } from "@mam/contracts/domains-api.ts";
import { AppError, type ErrorCode } from "@mam/contracts/errors.ts";
import { IdParam } from "@mam/contracts/identity-api.ts";
import type { KeyKind } from "@mam/contracts/keys.ts";
import { AddressKey } from "@mam/contracts/mailbox-api.ts";
import { parseRequest, type RpcContract } from "@mam/contracts/rpc-contract.ts";

export type Method = "get" | "post" | "patch" | "delete";

/** `"/inboxes/:inboxId/reply/:messageId"` → `"inboxId" | "messageId"`. */
export type PathParams<P extends string> = P extends `${string}:${infer Name}/${infer Rest}`
  ? Name | PathParams<`/${Rest}`>
  : P extends `${string}:${infer Name}`
    ? Name
    : never;

/**
 * What each path parameter may be, checked before a request leaves the gateway: an id is a
 * UUID, a domain its id or name, an address a plain string; none holds a control character.
 */
export const pathParamSchemas = {
  tenantId: IdParam,
  workspaceId: IdParam,
  keyId: IdParam,
  inboxId: IdParam,
  messageId: IdParam,
  attachmentId: IdParam,
  threadId: IdParam,
  draftId: IdParam,
  listId: IdParam,
  entryId: IdParam,
  webhookId: IdParam,
  domain: DomainKey,
  address: AddressKey,
} satisfies Record<string, z.ZodType<string>>;
type KnownParam = keyof typeof pathParamSchemas;

/** What the API document says of a route, beside what its contract says. */
export interface RouteSpec {
  summary: string;
  description?: string;
  tag: string;
  /** The key kinds that may call it. The service decides; this is what the document shows. */
  keys: readonly KeyKind[];
  /** Success statuses, the usual one first (default 200). */
  status?: readonly [number, ...number[]];
  /**
   * Where the request comes from: the JSON body as it is, or the query string with the path
   * parameters. Otherwise the path parameters, and `body`, `query` and `idempotencyKey` when
   * the contract's request has them.
   */
  from?: "body" | "query";
  /** The success response is bytes of this media type, not JSON. */
  bytes?: "message/rfc822" | "application/octet-stream";
  /** Error codes this route may answer beyond the ones every route may. */
  errors?: readonly ErrorCode[];
  /** For a second route to the same subject: the document's operation ids are unique. */
  operationId?: string;
}

/** A public `/v1` route forwarded to the service owning its contract. */
export interface ForwardRoute extends RouteSpec {
  method: Method;
  /** Express form; every `:name` is a field of the contract's request. */
  path: string;
  contract: RpcContract;
  /** What the service receives: the fields its request has, nothing else. */
  toRpc: (req: Request) => unknown;
  /** Throws a VALIDATION_ERROR unless the path parameters and the request meet their schemas. */
  check: (req: Request, rpcBody: unknown) => void;
}

type Fields<C extends RpcContract> = keyof z.input<C["request"]> & string;
/** A path parameter the request has no field for fails to compile, naming it. */
type PathCheck<C extends RpcContract, P extends string> = [Exclude<PathParams<P>, Fields<C>>] extends [never]
  ? [Exclude<PathParams<P>, KnownParam>] extends [never]
    ? unknown
    : { pathParameterWithoutSchema: Exclude<PathParams<P>, KnownParam> }
  : { pathParameterNotInRequest: Exclude<PathParams<P>, Fields<C>> };

export function route<C extends RpcContract, P extends string>(method: Method, path: P, contract: C, spec: RouteSpec & PathCheck<C, P>): ForwardRoute {
  return { ...spec, method, path, contract, toRpc: requestOf(path, contract, spec.from), check: checkerOf(path, contract) };
}

/**
 * The path parameters first (each against its schema, named as the path names it), then the
 * whole request against the contract the service parses it with: bad input is a 400 here,
 * before any service is asked. The services check again; this only answers sooner.
 */
function checkerOf(path: string, contract: RpcContract): ForwardRoute["check"] {
  const names = pathParamNames(path) as KnownParam[];
  return (req, rpcBody) => {
    const fields: { path: string; message: string }[] = [];
    for (const name of names) {
      const r = pathParamSchemas[name].safeParse(req.params[name] ?? "");
      if (!r.success) fields.push(...r.error.issues.map((i) => ({ path: name, message: i.message })));
    }
    if (fields.length) {
      throw new AppError("VALIDATION_ERROR", `Invalid path: ${fields.map((f) => `${f.path}: ${f.message}`).join("; ")}`, fields);
    }
    parseRequest(contract, rpcBody);
  };
}

/** Whether a route hands its service the Idempotency-Key header (its contract takes one, and it is not the body as sent). */
export const honoursIdempotencyKey = (r: Pick<ForwardRoute, "contract" | "from">): boolean => r.from !== "body" && "idempotencyKey" in r.contract.request.shape;

export const pathParamNames = (path: string): string[] => [...path.matchAll(/:(\w+)/g)].map((m) => m[1]!);

const bodyOf = (req: Request): unknown => req.body ?? {};
/** Query parameters as plain strings (repeated ones: the first). */
const queryOf = (req: Request): Record<string, string> =>
  Object.fromEntries(Object.entries(req.query).map(([k, v]) => [k, Array.isArray(v) ? String(v[0]) : String(v ?? "")]));

function requestOf(path: string, contract: RpcContract, from: RouteSpec["from"]): (req: Request) => unknown {
  const names = pathParamNames(path);
  const shape = contract.request.shape;
  if (from === "body") return bodyOf;
  return (req) => {
    const out: Record<string, unknown> = from === "query" ? queryOf(req) : {};
    for (const name of names) out[name] = String(req.params[name] ?? "");
    if ("body" in shape) out.body = bodyOf(req);
    if ("query" in shape) out.query = queryOf(req);
    if ("idempotencyKey" in shape) {
      const key = req.get("idempotency-key");
      if (key) out.idempotencyKey = key;
    }
    return out;
  };
}
