import { connect, Socket } from "node:net";
import { ServerResponse, type IncomingMessage, type Server } from "node:http";
import type { Duplex } from "node:stream";
import type { Express, Request } from "express";
import type { Bus } from "@mam/bus/connection.ts";
import { call, request } from "@mam/bus/rpc-client.ts";
import { AppError, publicErrorBody, type ErrorBody } from "@mam/contracts/errors.ts";
import { IdParam } from "@mam/contracts/identity-api.ts";
import type { Principal } from "@mam/contracts/keys.ts";
import { WsClose, WsUpgradeHeaders } from "@mam/contracts/ws-frames.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import { Headers, serviceOfSubject } from "@mam/contracts/scope.ts";
import { isDependencyOutage } from "@mam/runtime/dependency.ts";
import { uuidv7 } from "@mam/runtime/ids.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import { endWithJson } from "@mam/runtime/raw-response.ts";
import type { ScopeSigner } from "@mam/scope/token.ts";
import { LookupRefused, type Authenticator, type LookupGuard } from "../auth/authenticator.ts";
import type { RateDecision, RateLimiter } from "../auth/rate-limit.ts";
import type { GatewayConfig } from "../config.ts";
import { presentedKey, RATE_MESSAGE, WS_PATH } from "./app.ts";
import { closeFrame, FrameBoundaries } from "./frame-boundaries.ts";

export interface WebSocketDoorDeps {
  cfg: GatewayConfig;
  app: Express;
  bus: Bus;
  auth: Authenticator;
  limiter: RateLimiter;
  signer: ScopeSigner;
  logger: Logger;
}

/** How long a realtime replica has to be named, and then to answer the upgrade it is handed. */
const REPLICA_TIMEOUT_MS = 5_000;
/** How long a closed connection's last bytes may take to reach a client before it is cut. */
const LINGER_MS = 10_000;
/** Going away, how long a frame the replica has begun may take to end before the connection is cut without a close frame. */
const GO_AWAY_WAIT_MS = 2_000;
/** Idle time before TCP keepalive probes on a piped connection's two sockets. */
const KEEPALIVE_MS = 30_000;
const REALTIME = serviceOfSubject(RpcContracts.realtime.wsRoute.subject);
const MAILBOX = serviceOfSubject(RpcContracts.mailbox.inboxGet.subject);
/** Headers only the gateway may set on what it hands realtime (any a client sent are dropped), and the key material. */
const DROPPED = (name: string) => name === "x-api-key" || name === "authorization" || name.startsWith("mam-");

type Refusal = { status: number; body: ErrorBody; headers?: Record<string, string> };

/**
 * `GET /v1/ws` and `GET /v1/inboxes/:id/ws`: the key is checked (and counted) as for any
 * request, and refused with a JSON error before any upgrade. An accepted upgrade is handed,
 * without the key and with a scope token for realtime, to a replica the queue group picks;
 * from then on the gateway only pipes bytes both ways.
 */
export class WebSocketDoor {
  /** Piped connections, each with how it goes away when the gateway stops. */
  private readonly open = new Map<Duplex, () => void>();

  constructor(private readonly d: WebSocketDoorDeps) {}

  attach(server: Server): void {
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on("error", () => socket.destroy());
      this.upgrade(req, socket, head).catch((err: unknown) => {
        this.d.logger.error({ err }, "websocket upgrade failed");
        endWithJson(socket, 500, { error: "Internal error", code: "INTERNAL" });
      });
    });
  }

  /**
   * Ends every piped connection (the server's close waits for them otherwise), each with a
   * close frame `1001` (going away: reconnect and resume) sent between two of the replica's
   * frames; what is still open after the wait is cut.
   */
  async close(): Promise<void> {
    for (const goAway of this.open.values()) goAway();
    const until = Date.now() + GO_AWAY_WAIT_MS + 500;
    while (this.open.size && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const s of this.open.keys()) s.destroy();
  }

  private async upgrade(raw: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const [path = "", query = ""] = (raw.url ?? "").split(/\?(.*)/s);
    const m = WS_PATH.exec(path);
    if (!m) return this.passOn(raw, socket);
    // As express itself does: the request gets its methods (ip with TRUST_PROXY, get).
    const req = Object.setPrototypeOf(raw, this.d.app.request) as Request;
    const given = req.get("x-request-id");
    const requestId = given && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : uuidv7();
    const started = performance.now();
    const refuse = (r: Refusal) => {
      const { status, body } = publicErrorBody(r.body);
      const retry: Record<string, string> = body.code === "UNAVAILABLE" ? { "Retry-After": "2" } : {};
      endWithJson(socket, r.status || status, body, { "X-Request-Id": requestId, ...retry, ...r.headers });
      this.d.logger.info({ requestId, method: req.method, path, status: r.status || status, ms: Math.round(performance.now() - started) }, "request");
    };
    if (req.method !== "GET") return refuse({ status: 404, body: { error: `No route for ${req.method} ${path}`, code: "NOT_FOUND" } });
    if ((req.get("upgrade") ?? "").toLowerCase() !== "websocket") return refuse(upgradeRequired());
    // A handshake has no body: one announced would reach the replica as bytes of the WebSocket.
    if (hasBody(req)) return refuse({ status: 400, body: { error: "A WebSocket upgrade request has no body", code: "VALIDATION_ERROR" } });

    const params = new URLSearchParams(query);
    const admitted = await this.admit(req, presentedKey(req) ?? params.get("api_key")?.trim() ?? undefined, requestId);
    if ("refusal" in admitted) return refuse(admitted.refusal);
    const p = admitted.principal;
    if (!p.tenantId) return refuse({ status: 403, body: { error: "The operator key has no events to subscribe to", code: "FORBIDDEN" } });
    // Checked after the key, as every route's parameters are: a caller without one learns nothing.
    let inboxId: string | undefined;
    if (m[1] !== undefined) {
      const id = IdParam.safeParse(safeDecode(m[1]));
      if (!id.success)
        return refuse({
          status: 400,
          body: { error: "Invalid inboxId: must be a UUID", code: "VALIDATION_ERROR", fields: [{ path: "inboxId", message: "must be a UUID" }] },
        });
      inboxId = id.data;
    }

    const extra: Record<string, string> = {
      [Headers.scope]: this.d.signer.mint(p, [REALTIME], this.d.cfg.SCOPE_TOKEN_TTL_S),
      [Headers.requestId]: requestId,
    };
    // The path's inbox (and an inbox key's own) must be one the key sees: the mailbox says, and gives its address.
    const shown = inboxId ?? p.inboxId;
    if (shown) {
      const reply = await request(
        this.d.bus,
        RpcContracts.mailbox.inboxGet.subject,
        { inboxId: shown },
        {
          scope: this.d.signer.mint(p, [MAILBOX], this.d.cfg.SCOPE_TOKEN_TTL_S),
          requestId,
          timeoutMs: this.d.cfg.RPC_TIMEOUT_MS,
        },
      );
      if (!reply.ok) return refuse({ status: 0, body: reply.error });
      const email = (reply.body as { email?: unknown }).email;
      if (inboxId) extra[WsUpgradeHeaders.inbox] = inboxId;
      if (typeof email === "string" && /^[\x21-\x7e]{1,320}$/.test(email)) extra[WsUpgradeHeaders.inboxEmail] = email;
    }

    const route = await call(this.d.bus, RpcContracts.realtime.wsRoute, {}, { requestId, timeoutMs: REPLICA_TIMEOUT_MS });
    if (!route.ok) return refuse({ status: 503, body: { error: "No realtime server is available; retry shortly", code: "UNAVAILABLE" } });
    params.delete("api_key");
    const rest = params.toString();
    const upstreamHead = headOf(req, `${path}${rest ? `?${rest}` : ""}`, extra);
    this.pipe(socket, head, route.body, upstreamHead, {
      unavailable: () => refuse({ status: 503, body: { error: "The realtime server did not answer; retry shortly", code: "UNAVAILABLE" } }),
      ended: () =>
        this.d.logger.info({ requestId, path, status: 101, replica: route.body.replicaId, ms: Math.round(performance.now() - started) }, "websocket closed"),
    });
  }

  /** The key resolved and counted, as the `/v1` router does for every request. */
  private async admit(req: Request, key: string | undefined, requestId: string): Promise<{ principal: Principal } | { refusal: Refusal }> {
    const address = req.ip ?? req.socket.remoteAddress ?? "unknown";
    const guard: LookupGuard = { takeLookup: () => this.d.limiter.takeLookup(address), giveBackLookup: () => this.d.limiter.giveBackLookup(address) };
    let principal: Principal;
    try {
      principal = await this.d.auth.resolve(key, requestId, guard);
    } catch (err) {
      if (err instanceof LookupRefused) return { refusal: rateRefusal(err.rate, RATE_MESSAGE.address) };
      if (err instanceof AppError) return { refusal: { status: 0, body: err.toBody() } };
      if (isDependencyOutage(err)) return { refusal: { status: 503, body: { error: "Temporarily unavailable; retry shortly", code: "UNAVAILABLE" } } };
      throw err;
    }
    const rate = await this.d.limiter.check(principal);
    if (!rate.allowed) return { refusal: rateRefusal(rate, RATE_MESSAGE[rate.scope]) };
    return { principal };
  }

  /**
   * Connects to the replica, hands it the upgrade, and pipes both ways until either side
   * closes. Nothing from the replica within the wait: 503 to the client, which never saw a byte.
   */
  private pipe(
    socket: Duplex,
    head: Buffer,
    at: { host: string; port: number },
    upstreamHead: string,
    on: { unavailable: () => void; ended: () => void },
  ): void {
    if (socket.destroyed) return;
    // TCP keepalive both ways: a peer gone without a word (a replica's host lost, a client's
    // network gone) is found out and both sockets let go, instead of piping into nothing for ever.
    const upstream: Socket = connect({ host: at.host, port: at.port, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_MS });
    if (socket instanceof Socket) socket.setKeepAlive(true, KEEPALIVE_MS);
    let answered = false;
    const fail = () => {
      if (answered) return socket.destroy();
      answered = true;
      upstream.destroy();
      on.unavailable();
    };
    const timer = setTimeout(fail, REPLICA_TIMEOUT_MS);
    upstream.once("connect", () => {
      upstream.write(upstreamHead);
      if (head.length) upstream.write(head);
      socket.pipe(upstream);
    });
    upstream.once("data", () => {
      answered = true;
      clearTimeout(timer);
    });
    // Passed on by hand rather than piped, its frames followed (see goAway). Not ended with the
    // replica's end: a replica that hangs up without a word is a 503, not an empty answer.
    const frames = new FrameBoundaries();
    let leaving = false;
    const sayGoingAway = () => {
      upstream.destroy();
      socket.write(closeFrame(WsClose.goingAway, "gateway shutting down: reconnect and resume"));
      endThenDestroy(socket);
    };
    const goAway = () => {
      if (leaving) return;
      leaving = true;
      if (frames.atBoundary) return sayGoingAway();
      // A frame under way (or the handshake) ends first, whatever the client's pace (the rest
      // of one frame); one that never does is cut.
      upstream.resume();
      setTimeout(() => socket.destroy(), GO_AWAY_WAIT_MS).unref();
    };
    upstream.on("data", (chunk: Buffer) => {
      if (!leaving) {
        frames.pass(chunk);
        if (!socket.write(chunk)) upstream.pause();
        return;
      }
      const n = frames.passToBoundary(chunk);
      if (n) socket.write(chunk.subarray(0, n));
      if (frames.atBoundary && !upstream.destroyed) sayGoingAway();
    });
    socket.on("drain", () => upstream.resume());
    let ended = false;
    upstream.once("end", () => {
      ended = true;
      if (!answered) return fail();
      // Its last frames (a close frame with its code) reach the client before the connection goes.
      endThenDestroy(socket);
    });
    upstream.on("error", fail);
    upstream.once("close", () => {
      clearTimeout(timer);
      // Going away: the close frame is on its way to the client.
      if (leaving) return;
      if (!answered) return fail();
      if (!ended) socket.destroy();
    });
    socket.once("close", () => {
      this.open.delete(socket);
      if (answered) on.ended();
      upstream.destroy();
    });
    this.open.set(socket, goAway);
  }

  /**
   * Another path asking for an upgrade (h2c, say) is served as the request it also is, on a
   * connection that then closes; one with a body cannot be (its bytes are no longer parsed).
   */
  private passOn(req: IncomingMessage, socket: Duplex): void {
    if (hasBody(req)) {
      endWithJson(socket, 400, { error: "Protocol upgrades are offered on /v1/ws and /v1/inboxes/:inboxId/ws only", code: "VALIDATION_ERROR" });
      return;
    }
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as Socket);
    res.once("finish", () => endThenDestroy(socket));
    this.d.app(req, res);
  }
}

/** A request announcing a body (any Transfer-Encoding, or a Content-Length other than 0). */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return req.headers["transfer-encoding"] !== undefined || (length !== undefined && length.trim() !== "0");
}

/**
 * Ends a client's connection once what is queued for it is written, then destroys it (the
 * server's timeouts no longer apply to an upgraded socket: a client that never closes its
 * side would keep it); one that does not read within the linger is cut.
 */
function endThenDestroy(socket: Duplex): void {
  if (socket.destroyed) return;
  if (socket.writableFinished) return void socket.destroy();
  const linger = setTimeout(() => socket.destroy(), LINGER_MS);
  linger.unref();
  socket.once("close", () => clearTimeout(linger));
  socket.once("finish", () => socket.destroy());
  socket.end();
}

function upgradeRequired(): Refusal {
  return { status: 426, body: { error: "Upgrade required: connect with a WebSocket client", code: "VALIDATION_ERROR" }, headers: { Upgrade: "websocket" } };
}

function rateRefusal(rate: RateDecision, message: string): Refusal {
  return {
    status: 429,
    body: { error: message, code: "RATE_LIMITED" },
    headers: {
      "Retry-After": String(rate.retryAfterS),
      "X-RateLimit-Limit": String(rate.limit),
      "X-RateLimit-Remaining": String(rate.remaining),
      "X-RateLimit-Scope": rate.scope,
    },
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The client's upgrade request as the replica gets it: without the key, with what the gateway vouches for. */
function headOf(req: IncomingMessage, target: string, extra: Record<string, string>): string {
  const lines = [`GET ${target} HTTP/1.1`];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    if (!DROPPED(name.toLowerCase())) lines.push(`${name}: ${req.rawHeaders[i + 1]}`);
  }
  for (const [name, value] of Object.entries(extra)) lines.push(`${name}: ${value}`);
  return `${lines.join("\r\n")}\r\n\r\n`;
}
