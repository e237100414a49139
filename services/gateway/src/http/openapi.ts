import { z } from "zod";
import { createDocument, type oas31, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject, type ZodOpenApiResponsesObject } from "zod-openapi";
import { ErrorBody, type ErrorCode, httpStatusOf } from "@mam/contracts/errors.ts";
import { keyPrefixOf, KeyKind } from "@mam/contracts/keys.ts";
import { pathParamNames, pathParamSchemas, type ForwardRoute, type Method } from "./route.ts";
import { forwardRoutes } from "./routes.ts";

/** A route the gateway answers itself; `keys: []` needs no key. */
export interface LocalRoute {
  method: Method;
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  keys: readonly KeyKind[];
  reply: z.ZodType;
  /** Error codes it may answer, for a route without a key (one with a key has the key's). */
  errors?: readonly ErrorCode[];
}

/** What a client sees of an error: every code, UNAVAILABLE included (a 503). */
const PublicError = ErrorBody.meta({ id: "Error" });

const SCHEME_NAME: Record<KeyKind, string> = { super_admin: "operator", tenant: "tenant", workspace: "workspace", inbox: "inbox" };
const KEY_LABEL: Record<KeyKind, string> = {
  super_admin: "the platform operator's key: tenant lifecycle",
  tenant: "a tenant's master key: everything in the tenant",
  workspace: "a workspace's master key: everything in one workspace",
  inbox: "an inbox's (agent's) key: one inbox",
};

function securitySchemes(): Record<string, oas31.SecuritySchemeObject> {
  return Object.fromEntries(
    KeyKind.options.flatMap((k) => {
      const what = `A \`${keyPrefixOf[k]}\` key, ${KEY_LABEL[k]}.`;
      return [
        [`${SCHEME_NAME[k]}Key`, { type: "apiKey", in: "header", name: "X-API-Key", description: `${what} Sent as \`X-API-Key\`.` }],
        [`${SCHEME_NAME[k]}Bearer`, { type: "http", scheme: "bearer", description: `${what} Sent as \`Authorization: Bearer\`.` }],
      ];
    }),
  );
}

/** Either header carries any allowed kind of key. */
const securityOf = (keys: readonly KeyKind[]) => keys.flatMap((k) => [{ [`${SCHEME_NAME[k]}Key`]: [] }, { [`${SCHEME_NAME[k]}Bearer`]: [] }]);

/** Every call may meet these; a route names the others it may answer. */
const COMMON_ERRORS: ErrorCode[] = ["VALIDATION_ERROR", "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND", "RATE_LIMITED", "INTERNAL", "UNAVAILABLE"];
const ERROR_NOTE: Partial<Record<ErrorCode, string>> = {
  UNAUTHORIZED: "missing, unknown or revoked key",
  NOT_FOUND: "also for what exists but the key does not see",
  RATE_LIMITED: "with Retry-After",
  INTERNAL: "a bug on our side; the body never says more than `Internal error`",
  UNAVAILABLE: "a database, the message bus or a service is unreachable or restarting: retry after Retry-After seconds",
};

function errorResponses(codes: readonly ErrorCode[]): ZodOpenApiResponsesObject {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codes)) byStatus.set(httpStatusOf[code], [...(byStatus.get(httpStatusOf[code]) ?? []), code]);
  const out: ZodOpenApiResponsesObject = {};
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    const description = list.map((c) => (ERROR_NOTE[c] ? `\`${c}\` (${ERROR_NOTE[c]})` : `\`${c}\``)).join(", ");
    out[`${status}` as StatusKey] = { description, content: { "application/json": { schema: PublicError } } };
  }
  return out;
}

type StatusKey = `${1 | 2 | 3 | 4 | 5}${string}`;
const STATUS_TEXT: Record<number, string> = { 200: "OK", 201: "Created" };

/** The schema the gateway checks each path parameter with; it answers 400 for a malformed one. */
function pathParamDoc(name: string): z.ZodType {
  const schema: z.ZodType = pathParamSchemas[name as keyof typeof pathParamSchemas];
  if (name.endsWith("Id")) return schema.meta({ description: `The ${name.slice(0, -2)}'s id` });
  if (name === "domain") return schema.meta({ description: "The domain's id or its name" });
  if (name === "address") return schema.meta({ description: "The address, URL-encoded" });
  return schema;
}

const IdempotencyKey = z.string().max(255).optional().meta({ description: "A retry with the same key returns the first answer and sends nothing again" });

function forwardOperation(r: ForwardRoute): ZodOpenApiOperationObject {
  const request = r.contract.request;
  const shape = request.shape;
  const names = pathParamNames(r.path);
  const body: z.ZodType | undefined = r.from === "body" ? request : (shape.body as z.ZodType | undefined);
  let query = shape.query as z.ZodObject | undefined;
  // The path parameters are in the request too: the query is the rest of it.
  if (r.from === "query") query = request.omit(Object.fromEntries(names.map((n) => [n, true])) as Record<string, true> & Record<number, never>);
  const requestParams = {
    ...(names.length ? { path: z.object(Object.fromEntries(names.map((n) => [n, pathParamDoc(n)]))) } : {}),
    ...(query ? { query } : {}),
    ...("idempotencyKey" in shape ? { header: z.object({ "Idempotency-Key": IdempotencyKey }) } : {}),
  };
  const success: ZodOpenApiResponsesObject = {};
  for (const status of r.status ?? [200]) {
    const content = r.bytes
      ? { [r.bytes]: { schema: { type: "string", contentMediaType: r.bytes } as oas31.SchemaObject } }
      : { "application/json": { schema: r.contract.reply } };
    success[`${status}` as StatusKey] = { description: STATUS_TEXT[status] ?? String(status), content };
  }
  const errors: ErrorCode[] = [...COMMON_ERRORS, ...(r.errors ?? []), ...(body ? (["PAYLOAD_TOO_LARGE"] as const) : [])];
  return {
    operationId: r.operationId ?? operationIdOf(r.contract.subject),
    summary: r.summary,
    ...(r.description ? { description: r.description } : {}),
    tags: [r.tag],
    security: securityOf(r.keys),
    ...(Object.keys(requestParams).length ? { requestParams } : {}),
    // A body that may be left out is one whose every field is optional.
    ...(body ? { requestBody: { required: !body.safeParse({}).success, content: { "application/json": { schema: body } } } } : {}),
    responses: { ...success, ...errorResponses(errors) },
  };
}

/** `svc.mailbox.list-entry.add` → `listEntryAdd`. */
const operationIdOf = (subject: string) =>
  subject
    .split(".")
    .slice(2)
    .join("-")
    .replace(/-(\w)/g, (_m, c: string) => c.toUpperCase());

function localOperation(r: LocalRoute): ZodOpenApiOperationObject {
  // Resolving a key the gateway has not cached asks identity, which may be unreachable.
  const errors: ErrorCode[] = r.keys.length ? ["UNAUTHORIZED", "RATE_LIMITED", "INTERNAL", "UNAVAILABLE"] : [...(r.errors ?? [])];
  return {
    operationId: r.operationId,
    summary: r.summary,
    tags: [r.tag],
    security: securityOf(r.keys),
    responses: { "200": { description: "OK", content: { "application/json": { schema: r.reply } } }, ...errorResponses(errors) },
  };
}

/** `/inboxes/:inboxId` → `/v1/inboxes/{inboxId}`. */
export const documentPath = (expressPath: string) => `/v1${expressPath.replace(/:(\w+)/g, "{$1}")}`;

const TAGS = [
  ["Tenants", "The operator provisions tenants."],
  ["Workspaces", "A tenant's workspaces and their wk_ keys."],
  ["Inboxes", "Inboxes and their addresses."],
  ["Messages", "Sending, reading and organising mail."],
  ["Drafts", "Drafts: a message prepared, sent when approved."],
  ["Lists", "Named groups of addresses, per inbox."],
  ["Domains", "Custom domains and their DNS records."],
  ["Platform", "The platform's own mail domain (operator)."],
  ["Webhooks", "Signed HTTP callbacks for mail events, retried, with a delivery log."],
  ["Realtime", "WebSocket subscriptions to mail events, resumable."],
  ["Metrics", "Usage counters over a window, and what a scope holds now."],
  ["Billing", "The tenant's plan, its limits and what it uses of them."],
  ["Keys", "What a key is, and this document."],
  ["MCP", "The mail tools for agents over the Model Context Protocol (Streamable HTTP, one session per key)."],
] as const;

/** A WebSocket door: a GET that upgrades (101), or is answered 426 without the upgrade. */
export interface WebSocketDoorDoc {
  path: string;
  operationId: string;
  summary: string;
  description: string;
}

const WS_FRAMES =
  "The key may also come as `?api_key=`; a refused key is answered (401) before any upgrade. Frames are JSON text: the server sends " +
  "`connected`, then `subscribed` (the filters in force), `event` (`event_type`, `event_id`, `message {…}`, `thread {…}`), `ping` and `error` " +
  "(`code`, `message`); the client sends `subscribe` with any of `event_types`, `inbox_ids`, `workspace_ids` (alias `pod_ids`) and " +
  "`last_event_id` (replays what it missed, each once, then live), and may send `ping`. Close codes: 4001 key revoked or its workspace or " +
  "inbox deleted, 4008 too slow (reconnect and resume), 4029 too many connections, 1001 server going away.";

function websocketOperation(d: WebSocketDoorDoc): ZodOpenApiOperationObject {
  const inbox = d.path.includes(":inboxId");
  return {
    operationId: d.operationId,
    summary: d.summary,
    description: `${d.description} ${WS_FRAMES}`,
    tags: ["Realtime"],
    security: securityOf(["tenant", "workspace", "inbox"]),
    requestParams: {
      query: z.object({ api_key: z.string().optional().meta({ description: "the key, for clients that cannot set headers" }) }),
      ...(inbox ? { path: z.object({ inboxId: z.string() }) } : {}),
    },
    responses: {
      "101": { description: "Switching Protocols: the WebSocket is open" },
      "426": { description: "`VALIDATION_ERROR`: asked without `Upgrade: websocket`", content: { "application/json": { schema: PublicError } } },
      ...errorResponses([
        "VALIDATION_ERROR",
        "UNAUTHORIZED",
        "FORBIDDEN",
        ...(inbox ? (["NOT_FOUND"] as const) : []),
        "RATE_LIMITED",
        "INTERNAL",
        "UNAVAILABLE",
      ]),
    },
  };
}

export function buildOpenApiDocument(
  local: readonly LocalRoute[],
  routes: readonly ForwardRoute[] = forwardRoutes,
  doors: readonly WebSocketDoorDoc[] = [],
): oas31.OpenAPIObject {
  const paths: ZodOpenApiPathsObject = {};
  const add = (method: Method, path: string, op: ZodOpenApiOperationObject) => {
    paths[documentPath(path)] = { ...paths[documentPath(path)], [method]: op };
  };
  for (const r of local) add(r.method, r.path, localOperation(r));
  for (const d of doors) add("get", d.path, websocketOperation(d));
  for (const r of routes) add(r.method, r.path, forwardOperation(r));
  return createDocument({
    openapi: "3.1.0",
    info: {
      title: "Agent mail platform API",
      version: "1.0.0",
      description:
        "Email for AI agents, compatible with myagentmail's v1 API. Every call but this document's takes a key in `X-API-Key` " +
        "or `Authorization: Bearer`; its prefix says how far it sees: `sa_` operator ⊃ `tk_` tenant ⊃ `wk_` workspace ⊃ `ak_` inbox. " +
        "Errors are `{ error, code, fields? }`; what a key may not see is answered 404, as if it did not exist.",
    },
    tags: TAGS.map(([name, description]) => ({ name, description })),
    paths,
    components: { securitySchemes: securitySchemes() },
  });
}
