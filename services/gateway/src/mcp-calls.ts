import type { Request } from "express";
import type { Bus } from "@mam/bus/connection.ts";
import { request, wasUnanswered } from "@mam/bus/rpc-client.ts";
import { AppError } from "@mam/contracts/errors.ts";
import type { Principal } from "@mam/contracts/keys.ts";
import type { Api, ApiRequest } from "@mam/mcp/api.ts";
import { isDependencyOutage } from "@mam/runtime/dependency.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import type { ScopeSigner } from "@mam/scope/token.ts";
import type { RateLimiter } from "./auth/rate-limit.ts";
import type { GatewayConfig } from "./config.ts";
import { honoursIdempotencyKey, type ForwardRoute } from "./http/route.ts";
import { forwardFailure } from "./http/errors.ts";
import { audienceOf, forwardRoutes } from "./http/routes.ts";

export interface CallDeps {
  cfg: GatewayConfig;
  bus: Bus;
  signer: ScopeSigner;
  limiter: RateLimiter;
  logger: Logger;
}

const byRoute = new Map(forwardRoutes.map((r) => [`${r.method.toUpperCase()} ${r.path}`, r]));

/** The forward route a tool names; a tool naming no route is a bug, found by the first call. */
export function forwardRouteOf(r: Pick<ApiRequest, "method" | "route">): ForwardRoute {
  const route = byRoute.get(`${r.method} ${r.route}`);
  if (!route) throw new Error(`no /v1 route ${r.method} ${r.route}`);
  return route;
}

/** What a route's `toRpc` and `check` read of a request: nothing else of express's is needed. */
type RouteInput = Pick<Request, "params" | "query" | "body" | "get">;

/**
 * API calls of the MCP tools inside the gateway, as the caller whose request carries them:
 * each goes through its route's own request building and checks, with a scope token minted
 * for the caller, to the service owning it over the bus, as the `/v1` route would send it.
 * No second HTTP hop and no second key check (the MCP request that carried the tool call
 * went through it), but each call takes from the key's rate as a `/v1` request would: one
 * tool call may make many (a search reads page after page).
 */
export function gatewayApi(d: CallDeps, principal: Principal, requestId: string): Api {
  return async (r) => {
    const route = forwardRouteOf(r);
    const query = Object.fromEntries(Object.entries(r.query ?? {}).flatMap(([k, v]) => (v === undefined ? [] : [[k, String(v)]])));
    const input: RouteInput = {
      params: r.params ?? {},
      query,
      body: r.body,
      get: ((name: string) => (name.toLowerCase() === "idempotency-key" ? r.idempotencyKey : undefined)) as Request["get"],
    };
    try {
      const rate = await d.limiter.check(principal);
      if (!rate.allowed) {
        return { ok: false, error: { error: `Rate limit exceeded for this ${rate.scope}; retry in ${rate.retryAfterS} s`, code: "RATE_LIMITED" } };
      }
      // The routes take an express request; they read only these fields of it.
      const req = input as Request;
      const rpcBody = route.toRpc(req);
      route.check(req, rpcBody);
      const reply = await request(d.bus, route.contract.subject, rpcBody, {
        scope: d.signer.mint(principal, audienceOf(route), d.cfg.SCOPE_TOKEN_TTL_S),
        requestId,
        timeoutMs: d.cfg.RPC_TIMEOUT_MS,
      });
      // A send not answered in time may still go: said so, as the /v1 route says it.
      return reply.ok
        ? { ok: true, status: reply.status, body: reply.body }
        : {
            ok: false,
            error: forwardFailure(route.method, honoursIdempotencyKey(route) && !!r.idempotencyKey, reply.error, wasUnanswered(reply.error)).toBody(),
          };
    } catch (err) {
      // As errorHandler answers the same failure of a /v1 route.
      if (err instanceof AppError) return { ok: false, error: err.toBody() };
      if (isDependencyOutage(err)) {
        d.logger.warn({ err: (err as Error).message, requestId }, "dependency unavailable");
        return { ok: false, error: { error: "Temporarily unavailable: a server this request needs cannot be reached; retry shortly", code: "UNAVAILABLE" } };
      }
      d.logger.error({ err, requestId, route: `${r.method} ${r.route}` }, "unhandled error in an MCP tool call");
      return { ok: false, error: { error: "Internal error", code: "INTERNAL" } };
    }
  };
}
