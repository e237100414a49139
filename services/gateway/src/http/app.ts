import express, { type NextFunction, type Request, type Response } from "express";
import { z } from "zod";
import type { Bus } from "@mam/bus/connection.ts";
import { request, requestPassingBody, wasUnanswered } from "@mam/bus/rpc-client.ts";
import { AppError } from "@mam/contracts/errors.ts";
import { BinaryBody } from "@mam/contracts/rpc.ts";
import { Me, type Principal } from "@mam/contracts/keys.ts";
import { readinessBody, type ReadinessCheck } from "@mam/runtime/health.ts";
import { uuidv7 } from "@mam/runtime/ids.ts";
import { withLogContext } from "@mam/runtime/log-context.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import type { ServiceMetrics } from "@mam/runtime/metrics.ts";
import type { ScopeSigner } from "@mam/scope/token.ts";
import { LookupRefused, type Authenticator, type LookupGuard } from "../auth/authenticator.ts";
import type { RateDecision, RateLimiter } from "../auth/rate-limit.ts";
import type { GatewayConfig } from "../config.ts";
import { STRIPE_WEBHOOK_MAX_BYTES, StripeWebhookReply } from "@mam/contracts/billing-api.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import { renderDocsPage } from "./docs-page.ts";
import { streamBinary } from "./download.ts";
import { errorHandler, forwardFailure, sendError } from "./errors.ts";
import { admitLargeBodies, LargeBodies } from "./large-bodies.ts";
import { buildOpenApiDocument, type LocalRoute, type WebSocketDoorDoc } from "./openapi.ts";
import { httpMetrics } from "./metrics.ts";
import { malformedPathHandler } from "./path-decoding.ts";
import { audienceOf, forwardRoutes } from "./routes.ts";
import { honoursIdempotencyKey } from "./route.ts";
import { documentMcp, mcpDoor } from "../mcp-door.ts";

export interface AppDeps {
  cfg: GatewayConfig;
  bus: Bus;
  auth: Authenticator;
  limiter: RateLimiter;
  signer: ScopeSigner;
  logger: Logger;
  readiness: ReadinessCheck;
  metrics: ServiceMetrics;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** `/v1/ws` and `/v1/inboxes/:inboxId/ws` (the inbox as it came, still encoded); their upgrades go to websocket.ts. */
export const WS_PATH = /^\/v1\/(?:ws|inboxes\/([^/]+)\/ws)\/?$/;

export function presentedKey(req: Request): string | undefined {
  const header = req.get("x-api-key");
  if (header) return header.trim();
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.get("authorization") ?? "");
  return m?.[1];
}

const principalOf = (res: Response) => res.locals.principal as Principal;

export const RATE_MESSAGE: Record<RateDecision["scope"], string> = {
  key: "Rate limit exceeded for this key",
  tenant: "Rate limit exceeded for this tenant (all its keys together)",
  address: "Too many unknown API keys from this address; retry later",
};

/** Which window the figures describe: key, tenant or address. */
function setRateHeaders(res: Response, rate: RateDecision): void {
  res.setHeader("X-RateLimit-Limit", String(rate.limit));
  res.setHeader("X-RateLimit-Remaining", String(rate.remaining));
  res.setHeader("X-RateLimit-Scope", rate.scope);
}

function refuseRate(res: Response, rate: RateDecision, message: string): void {
  setRateHeaders(res, rate);
  sendError(res, { error: message, code: "RATE_LIMITED" }, rate.retryAfterS);
}

/** `GET /v1/me`: what the key resolves to; `tenantId` is absent only for the operator. */
function me(p: Principal): Me {
  const out: Me = { keyId: p.keyId, kind: p.kind };
  if (p.tenantId) out.tenantId = p.tenantId;
  if (p.workspaceId) out.workspaceId = p.workspaceId;
  if (p.inboxId) out.inboxId = p.inboxId;
  return out;
}

/** The `/v1` routes the gateway answers itself, as the API document shows them. */
const localRoutes: LocalRoute[] = [
  {
    method: "get",
    path: "/me",
    operationId: "me",
    summary: "What the key resolves to",
    tag: "Keys",
    keys: ["super_admin", "tenant", "workspace", "inbox"],
    reply: Me,
  },
  {
    method: "post",
    path: "/billing/stripe/webhook",
    operationId: "stripeWebhook",
    summary: "Stripe's webhook endpoint (no key: the Stripe-Signature header over the raw body authenticates it)",
    tag: "Billing",
    keys: [],
    reply: StripeWebhookReply,
    errors: ["VALIDATION_ERROR", "PAYLOAD_TOO_LARGE", "INTERNAL", "UNAVAILABLE"],
  },
  {
    method: "get",
    path: "/openapi.json",
    operationId: "openApiDocument",
    summary: "This API as an OpenAPI 3.1 document (no key needed)",
    tag: "Keys",
    keys: [],
    reply: z.looseObject({ openapi: z.string() }),
  },
];

/** The WebSocket doors, as the API document shows them (websocket.ts serves them). */
const webSocketDoors: WebSocketDoorDoc[] = [
  {
    path: "/ws",
    operationId: "websocket",
    summary: "WebSocket: mail events as they happen",
    description: "Subscribe to events of everything the key sees, narrowed by the subscribe frame's filters.",
  },
  {
    path: "/inboxes/:inboxId/ws",
    operationId: "inboxWebsocket",
    summary: "WebSocket subscribed to one inbox",
    description: "Subscribed to the inbox from the start (a subscribe frame may narrow it, never widen it).",
  },
];

/** Built on first ask, once: the routes do not change while the process runs. */
let document: { json: string; html: string } | undefined;
function apiDocument() {
  if (!document) {
    const doc = documentMcp(buildOpenApiDocument(localRoutes, forwardRoutes, webSocketDoors));
    document = { json: JSON.stringify(doc), html: renderDocsPage(doc) };
  }
  return document;
}

export function buildApp(d: AppDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.set("trust proxy", d.cfg.TRUST_PROXY);

  const metrics = httpMetrics(d.metrics);
  app.use(metrics.middleware);
  app.use((req, res, next) => {
    const given = req.get("x-request-id");
    const requestId = given && REQUEST_ID.test(given) ? given : uuidv7();
    res.locals.requestId = requestId;
    res.setHeader("X-Request-Id", requestId);
    const started = process.hrtime.bigint();
    res.on("finish", () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      d.logger.info({ requestId, method: req.method, path: req.originalUrl.split("?")[0], status: res.statusCode, ms: Math.round(ms * 10) / 10 }, "request");
    });
    // Every line the request's handling logs carries its id, however deep (see log-context.ts).
    withLogContext({ requestId }, next);
  });

  app.get("/healthz", (_req, res) => void res.json({ status: "ok" }));
  app.get("/readyz", async (_req, res) => {
    const r = await readinessBody(d.readiness);
    res.status(r.status).json(r.body);
  });

  // Before the /v1 router, whose first step asks every request for a key.
  app.get("/v1/openapi.json", (_req, res) => void res.type("application/json").send(apiDocument().json));
  app.get("/docs", (_req, res) => void res.type("html").send(apiDocument().html));

  // A WebSocket door asked without an upgrade (the upgrades never reach express: websocket.ts
  // takes them from the server's upgrade event).
  const upgradeRequired = (_req: Request, res: Response) => {
    res.setHeader("Upgrade", "websocket");
    res.status(426).json({ error: "Upgrade required: connect with a WebSocket client", code: "VALIDATION_ERROR" });
  };
  for (const door of webSocketDoors) app.get(`/v1${door.path}`, upgradeRequired);

  // Stripe's webhook: no key; the raw bytes and the Stripe-Signature header go to billing,
  // which checks the signature over exactly these bytes before parsing anything.
  app.post("/v1/billing/stripe/webhook", express.raw({ type: () => true, limit: STRIPE_WEBHOOK_MAX_BYTES }), async (req: Request, res: Response) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const reply = await request(
      d.bus,
      RpcContracts.billing.stripeWebhook.subject,
      { payload: raw.toString("base64"), signature: (req.get("stripe-signature") ?? "").slice(0, 4096) },
      { requestId: res.locals.requestId, timeoutMs: d.cfg.RPC_TIMEOUT_MS },
    );
    if (!reply.ok) throw AppError.fromBody(reply.error);
    res.status(reply.status).json(reply.body);
  });

  const v1 = express.Router();
  v1.use(async (req: Request, res: Response, next: NextFunction) => {
    // req.ip is the TCP peer unless TRUST_PROXY names the proxies whose X-Forwarded-For to believe.
    const address = req.ip ?? req.socket.remoteAddress ?? "unknown";
    const guard: LookupGuard = { takeLookup: () => d.limiter.takeLookup(address), giveBackLookup: () => d.limiter.giveBackLookup(address) };
    try {
      res.locals.principal = await d.auth.resolve(presentedKey(req), res.locals.requestId, guard);
    } catch (err) {
      if (!(err instanceof LookupRefused)) throw err;
      return refuseRate(res, err.rate, RATE_MESSAGE.address);
    }
    const rate = await d.limiter.check(principalOf(res));
    if (!rate.allowed) return refuseRate(res, rate, RATE_MESSAGE[rate.scope]);
    setRateHeaders(res, rate);
    next();
  });
  v1.use(
    admitLargeBodies(
      new LargeBodies(d.cfg.LARGE_BODIES_IN_FLIGHT, d.cfg.LARGE_BODIES_PER_KEY, d.cfg.LARGE_BODIES_PER_TENANT),
      (res) => ({ key: principalOf(res).keyId, tenant: principalOf(res).tenantId }),
      (res) => sendError(res, { error: "Too many large requests in flight; retry shortly", code: "RATE_LIMITED" }, 1),
      d.logger,
    ),
  );
  v1.use(express.json({ limit: d.cfg.BODY_LIMIT_BYTES, type: ["application/json", "application/*+json"] }));
  const mcp = mcpDoor(app, d, d.cfg);
  for (const method of ["post", "delete", "get"] as const) v1[method]("/mcp", mcp.handle);

  v1.get("/me", (_req, res) => void res.json(me(principalOf(res))));
  for (const r of forwardRoutes) {
    v1[r.method](r.path, async (req: Request, res: Response) => {
      // A token per call: a long download outlives one token's minute.
      const options = () => ({
        scope: d.signer.mint(principalOf(res), audienceOf(r), d.cfg.SCOPE_TOKEN_TTL_S),
        requestId: res.locals.requestId,
        timeoutMs: d.cfg.RPC_TIMEOUT_MS,
      });
      const call = (body: unknown) => request(d.bus, r.contract.subject, body, options());
      const rpcBody = r.toRpc(req);
      r.check(req, rpcBody);
      const keyed = honoursIdempotencyKey(r) && !!req.get("idempotency-key");
      if (!r.bytes) {
        // JSON as the service wrote it, sent on without being parsed and written again.
        const reply = await requestPassingBody(d.bus, r.contract.subject, rpcBody, options());
        if (!reply.ok) throw forwardFailure(r.method, keyed, reply.error, wasUnanswered(reply.error));
        if ("json" in reply) return void res.status(reply.status).type("application/json").send(reply.json);
        return void res.status(reply.status).json(reply.body);
      }
      const reply = await call(rpcBody);
      if (!reply.ok) throw forwardFailure(r.method, keyed, reply.error, wasUnanswered(reply.error));
      const bin = BinaryBody.safeParse(reply.body);
      if (bin.success) return streamBinary(d.logger, req, res, reply.status, bin.data, (offset) => call({ ...(rpcBody as object), offset }));
      res.status(reply.status).json(reply.body);
    });
  }
  app.use("/v1", v1);
  metrics.mounted(v1, "/v1");

  app.use((req, res) => sendError(res, { error: `No route for ${req.method} ${req.path}`, code: "NOT_FOUND" }));
  app.use(malformedPathHandler(forwardRoutes));
  app.use(errorHandler(d.logger));
  return app;
}
