import type { Request, RequestHandler, Response } from "express";
import type { oas31 } from "zod-openapi";
import { z } from "zod";
import type { Subscription } from "@nats-io/transport-node";
import { IDENTITY_CONTEXT, KeyRevokedV1, WorkspaceDeletedV1 } from "@mam/contracts/identity-events.ts";
import type { Principal } from "@mam/contracts/keys.ts";
import { type AuthInfo, McpHttpSessions } from "@mam/mcp/http.ts";
import { createMailServer, type ToolExtra } from "@mam/mcp/tools.ts";
import { sendError } from "./http/errors.ts";
import { type CallDeps, gatewayApi } from "./mcp-calls.ts";

/** The MCP endpoint's settings, from the environment as the gateway's others. */
export const McpEnv = z.object({
  /** Open MCP sessions one key may hold; one more is refused (429) until one ends or expires. */
  MCP_MAX_SESSIONS_PER_KEY: z.coerce.number().int().positive().default(10),
  /** Open MCP sessions of one tenant's keys together on this gateway, so one tenant cannot take them all. */
  MCP_MAX_SESSIONS_PER_TENANT: z.coerce.number().int().positive().default(100),
  /** Open MCP sessions on this gateway in all. */
  MCP_MAX_SESSIONS: z.coerce.number().int().positive().default(1000),
  /** A session without a request for this long is closed; its client starts a new one. */
  MCP_SESSION_IDLE_S: z.coerce.number().positive().default(1800),
  /** A request not answered in this long gets 504 UNAVAILABLE and its tool call is abandoned. */
  MCP_REQUEST_TIMEOUT_S: z.coerce.number().positive().default(60),
});
export type McpSettings = z.infer<typeof McpEnv>;

interface CallerContext extends Record<string, unknown> {
  principal: Principal;
  requestId: string;
}

/**
 * `POST` and `DELETE /v1/mcp`: the MCP tools over Streamable HTTP. Mounted as routes (`GET`
 * too, answered 405) of the `/v1` router, so that its metrics carry the route, after its key check, rate limit, large-body admission and JSON parser, so an MCP
 * request is taken as any API request is: the same keys in the same headers, each request
 * authenticated again (a revoked key stops at the next call), counted against the key's
 * rate. Each session is bound to the key that opened it.
 */
export interface McpDoor {
  handle: RequestHandler;
  /** Ends every session, and the exchanges under way with 503: a gateway stopping waits for none. */
  close(): Promise<void>;
}

/** The door each app was built with, for the gateway's stop. */
const doors = new WeakMap<object, McpDoor>();
export const mcpDoorOf = (app: object | undefined): McpDoor | undefined => (app ? doors.get(app) : undefined);

export function mcpDoor(app: object, d: CallDeps, settings: McpSettings): McpDoor {
  const sessions = new McpHttpSessions(
    {
      perOwner: settings.MCP_MAX_SESSIONS_PER_KEY,
      perGroup: settings.MCP_MAX_SESSIONS_PER_TENANT,
      total: settings.MCP_MAX_SESSIONS,
      idleMs: settings.MCP_SESSION_IDLE_S * 1000,
      requestMs: settings.MCP_REQUEST_TIMEOUT_S * 1000,
    },
    () =>
      createMailServer((extra: ToolExtra) => {
        const caller = extra.authInfo?.extra as CallerContext | undefined;
        // Every request reaches the session with its caller (below); none without is a bug.
        if (!caller) throw new Error("MCP tool call without its caller");
        return gatewayApi(d, caller.principal, caller.requestId);
      }),
  );
  const handle = async (req: Request, res: Response) => {
    const principal = res.locals.principal as Principal;
    // The key stays out of the session: the tools act as the principal it resolved to.
    const auth: AuthInfo = {
      token: "",
      clientId: principal.keyId,
      scopes: [principal.kind],
      extra: { principal, requestId: res.locals.requestId as string } satisfies CallerContext,
    };
    const refused = await sessions.handle(req, res, {
      owner: principal.keyId,
      group: principal.tenantId ?? undefined,
      workspace: principal.workspaceId ?? undefined,
      auth,
      body: req.body,
    });
    if (!refused) return;
    if (refused.allow) res.setHeader("Allow", refused.allow);
    // 405 has no error code of its own: the status says it, the body says why (as the WebSocket doors' 426);
    // 504 is UNAVAILABLE's for a request that ran out of time.
    if (refused.status === 405 || refused.status === 504) return void res.status(refused.status).json(refused.body);
    sendError(res, refused.body, refused.retryAfterS);
  };
  const revocations = watchRevocations(d, sessions);
  const door: McpDoor = {
    handle,
    close: async () => {
      for (const sub of revocations) sub.unsubscribe();
      await sessions.closeAll();
    },
  };
  doors.set(app, door);
  return door;
}

/**
 * A revoked key's sessions, and a deleted workspace's, close when the gateway hears of it (as
 * its key cache does: every instance hears every event), not when they idle out: they would
 * hold their tenant's and the gateway's session room until then.
 */
function watchRevocations(d: CallDeps, sessions: McpHttpSessions): Subscription[] {
  const on = (type: string, apply: (data: unknown) => void) =>
    d.bus.nc.subscribe(`${d.bus.prefix}evt.${IDENTITY_CONTEXT}.*.*.${type}`, {
      callback: (err, msg) => {
        if (err) return d.logger.error({ err, type }, "MCP sessions' revocation subscription failed");
        try {
          apply((msg.json() as { data: unknown }).data);
        } catch (e) {
          d.logger.warn({ err: e, type }, "unreadable revocation event");
        }
      },
    });
  return [
    on("KeyRevoked", (data) => void sessions.closeOf({ owner: KeyRevokedV1.parse(data).keyId })),
    on("WorkspaceDeleted", (data) => void sessions.closeOf({ workspace: WorkspaceDeletedV1.parse(data).workspaceId })),
  ];
}

const errorReply = (description: string): oas31.ResponseObject => ({
  description,
  content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
});
const MCP_KEYS = ["tenant", "workspace", "inbox"].flatMap((k) => [{ [`${k}Key`]: [] }, { [`${k}Bearer`]: [] }]);
const MCP_REFUSALS: Record<string, oas31.ResponseObject> = {
  "400": errorReply("`VALIDATION_ERROR`: no `Mcp-Session-Id` on a request that is not an `initialize`, or a JSON-RPC batch"),
  "401": errorReply("`UNAUTHORIZED` (missing, unknown or revoked key)"),
  "404": errorReply("`NOT_FOUND`: the session expired, was closed, or was opened with another key"),
  "429": errorReply("`RATE_LIMITED` (with Retry-After): the key's rate, or its, its tenant's or the gateway's open sessions"),
  "503": errorReply("`UNAVAILABLE`: the session closed under the request (the gateway stopping)"),
};

/** `/v1/mcp` as the API document shows it: the operations are JSON-RPC, not described route by route. */
export function documentMcp(doc: oas31.OpenAPIObject): oas31.OpenAPIObject {
  const more = "The MCP tools over Streamable HTTP (JSON answers, no SSE); see docs/mcp.md.";
  const sessionId = { name: "Mcp-Session-Id", in: "header" as const, schema: { type: "string" as const } };
  const paths = { ...doc.paths };
  paths["/v1/mcp"] = {
    post: {
      operationId: "mcp",
      summary: "MCP: one JSON-RPC message of a session",
      description: `${more} Without \`Mcp-Session-Id\`, an \`initialize\` opens a session and its answer carries the id.`,
      tags: ["MCP"],
      security: MCP_KEYS,
      parameters: [{ ...sessionId, description: "The session's id; absent on the `initialize` that opens one" }],
      requestBody: { required: true, content: { "application/json": { schema: { type: "object", description: "One JSON-RPC 2.0 message (no batch)" } } } },
      responses: {
        "200": {
          description: "The JSON-RPC answer (a tool's own failure is a result with `isError`)",
          content: { "application/json": { schema: { type: "object" } } },
        },
        "202": { description: "A notification taken" },
        ...MCP_REFUSALS,
        "504": errorReply("`UNAVAILABLE`: not answered within MCP_REQUEST_TIMEOUT_S"),
      },
    },
    delete: {
      operationId: "mcpEnd",
      summary: "MCP: end a session",
      description: more,
      tags: ["MCP"],
      security: MCP_KEYS,
      parameters: [{ ...sessionId, required: true }],
      responses: { "200": { description: "The session is closed" }, ...MCP_REFUSALS },
    },
    get: {
      operationId: "mcpStream",
      summary: "MCP: no server-initiated stream is offered (405)",
      description: more,
      tags: ["MCP"],
      security: MCP_KEYS,
      responses: {
        "405": errorReply("`VALIDATION_ERROR`: POST requests, DELETE to end a session (Allow: POST, DELETE)"),
        "401": MCP_REFUSALS["401"]!,
        "429": MCP_REFUSALS["429"]!,
      },
    },
  };
  return { ...doc, paths };
}
