import type { Msg, Subscription } from "@nats-io/transport-node";
import type { z } from "zod";
import { AppError, type ErrorBody } from "@mam/contracts/errors.ts";
import type { RpcReply } from "@mam/contracts/rpc.ts";
import { parseRequest, type RequestOf, type RpcContract } from "@mam/contracts/rpc-contract.ts";
import { Headers, type ScopeClaims } from "@mam/contracts/scope.ts";
import { rpcSubject } from "@mam/contracts/subjects.ts";
import { ScopeError, type ScopeVerifier, type VerifyOptions } from "@mam/scope/token.ts";
import { isDependencyOutage } from "@mam/runtime/dependency.ts";
import { withLogContext } from "@mam/runtime/log-context.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import type { Bus } from "./connection.ts";
import { outcomeOf, rpcTimer } from "./rpc-timing.ts";
import { INLINE_BYTES, spill, unspill } from "./spill.ts";

export interface RpcContext {
  /** Verified claims of the caller. Services take the workspace from here, never from the body alone. */
  claims: ScopeClaims;
  /** The token itself, to forward when this service asks another on the caller's behalf. */
  token: string;
  requestId: string;
  logger: Logger;
}
export interface RpcResult {
  status: number;
  body: unknown;
}
export type RpcHandler = (body: unknown, ctx: RpcContext) => Promise<RpcResult>;
/** Handlers that run before a scope exists (key resolution for the gateway). */
export type PublicRpcHandler = (body: unknown, ctx: Omit<RpcContext, "claims" | "token">) => Promise<RpcResult>;

/** A reply of a contract: its body has the contract's reply type. */
export interface ContractResult<C extends RpcContract> {
  status: number;
  body: z.input<C["reply"]>;
}
export type ContractHandler<C extends RpcContract> = (request: RequestOf<C>, ctx: RpcContext) => Promise<ContractResult<C>>;
export type PublicContractHandler<C extends RpcContract> = (request: RequestOf<C>, ctx: Omit<RpcContext, "claims" | "token">) => Promise<ContractResult<C>>;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const encode = (r: RpcReply) => JSON.stringify(r);

/** The answer to a request whose handler could not reach the database or the bus: not a bug, retry shortly. */
const UNAVAILABLE_BODY: ErrorBody = {
  error: "Temporarily unavailable: a database or service this request needs cannot be reached; retry shortly",
  code: "UNAVAILABLE",
};

/**
 * What a caller hears of a failure. An AppError says its own message; anything else says
 * only "unavailable" (a dependency outage) or "Internal error" (a bug): its message, stack,
 * SQL and paths go to this service's log, never into the reply.
 */
function toErrorBody(err: unknown, logger: Logger): ErrorBody {
  if (err instanceof AppError) return err.toBody();
  if (err instanceof ScopeError) return { error: "Invalid or expired scope token", code: "UNAUTHORIZED" };
  if (isDependencyOutage(err)) {
    // An outage fails every request until it ends: one line each, without a stack.
    logger.warn({ err: (err as Error).message, code: (err as { code?: unknown }).code }, "dependency unavailable");
    return UNAVAILABLE_BODY;
  }
  logger.error({ err }, "unhandled error in handler");
  return { error: "Internal error", code: "INTERNAL" };
}

/**
 * Serves commands and queries on `svc.*` subjects in a queue group, so N replicas share
 * the load. Every scoped handler first verifies the scope token: no token, a forged one,
 * an expired one or one minted for another service is refused before the handler runs.
 */
export class RpcServer {
  private readonly subs: Subscription[] = [];
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly bus: Bus,
    private readonly queue: string,
    private readonly verifier: ScopeVerifier,
    private readonly logger: Logger,
  ) {}

  /** `verify.forwarded`: also served to a service asking on a caller's behalf (see VerifyOptions). */
  handle(subject: string, handler: RpcHandler, verify: VerifyOptions = {}): void {
    this.listen(subject, async (msg, body, base) => {
      const token = msg.headers?.get(Headers.scope) ?? "";
      const claims = this.verifier.verify(token, verify);
      return handler(body, { ...base, claims, token });
    });
  }

  handlePublic(subject: string, handler: PublicRpcHandler): void {
    this.listen(subject, (_msg, body, base) => handler(body, base));
  }

  /**
   * Serves a contract: after the scope token, the request is parsed with the contract's
   * schema (a bad one is a VALIDATION_ERROR before the handler runs), and the handler's
   * reply must have the contract's type.
   */
  serve<C extends RpcContract>(contract: C, handler: ContractHandler<C>, verify: VerifyOptions = {}): void {
    this.handle(contract.subject, (body, ctx) => handler(parseRequest(contract, body), ctx), verify);
  }

  /** A contract served without a scope token. */
  servePublic<C extends RpcContract>(contract: C, handler: PublicContractHandler<C>): void {
    this.handlePublic(contract.subject, (body, ctx) => handler(parseRequest(contract, body), ctx));
  }

  private listen(subject: string, run: (msg: Msg, body: unknown, base: Omit<RpcContext, "claims" | "token">) => Promise<RpcResult>): void {
    const sub = this.bus.nc.subscribe(rpcSubject(this.bus.prefix, subject), {
      queue: this.queue,
      callback: (err, msg) => {
        if (err) return this.logger.error({ err, subject }, "subscription error");
        if (msg.reply && !isReplyInbox(msg.reply)) {
          // An answer goes to a caller's reply inbox, nowhere else: a request naming another
          // subject as its reply (a JetStream API subject, an event subject) would have us
          // publish there with our rights. Such a request is not run at all.
          this.logger.warn({ subject, reply: msg.reply.slice(0, 200) }, "refused request: its reply subject is not an inbox");
          return;
        }
        // Whatever the handler logs, down to the code it calls, carries the request's id.
        const rid = msg.headers?.get(Headers.requestId) ?? "";
        const requestId = REQUEST_ID.test(rid) ? rid : "unknown";
        const p = withLogContext({ requestId, rpc: subject }, () =>
          this.answer(msg, subject, requestId, run).catch((e: unknown) => this.logger.error({ err: e, subject }, "could not send a reply")),
        ).finally(() => this.inFlight.delete(p));
        this.inFlight.add(p);
      },
    });
    this.subs.push(sub);
  }

  private async answer(
    msg: Msg,
    subject: string,
    requestId: string,
    run: (msg: Msg, body: unknown, base: Omit<RpcContext, "claims" | "token">) => Promise<RpcResult>,
  ): Promise<void> {
    // The ids come from the log context (see listen), not from a child logger per request.
    const logger = this.logger;
    const started = performance.now();
    let reply: RpcReply;
    try {
      const spilled = msg.headers?.get(Headers.spilled);
      const data = spilled ? await unspill(this.bus, spilled) : msg.data;
      let body: unknown;
      try {
        body = data.length ? JSON.parse(Buffer.from(data).toString("utf8")) : {};
      } catch {
        throw new AppError("VALIDATION_ERROR", "Request body is not valid JSON");
      }
      const r = await run(msg, body, { requestId, logger });
      reply = { ok: true, status: r.status, body: r.body };
    } catch (err) {
      const error = toErrorBody(err, logger);
      if (err instanceof ScopeError) logger.warn({ reason: err.reason }, "refused request: scope token");
      reply = { ok: false, error };
    }
    logger.info({ ok: reply.ok, code: reply.ok ? undefined : reply.error.code, ms: Math.round(performance.now() - started) }, "rpc");
    rpcTimer(this.bus, "server")?.(subject, outcomeOf(reply), started);
    if (!msg.reply) return;
    const encoded = Buffer.from(encode(reply));
    if (encoded.length <= INLINE_BYTES) {
      msg.respond(encoded);
      return;
    }
    try {
      msg.respond(new Uint8Array(0), { headers: await spill(this.bus, encoded) });
    } catch (err) {
      logger.error({ err, bytes: encoded.length }, "could not hand over a large reply");
      msg.respond(encode({ ok: false, error: { error: "The reply could not be delivered; retry shortly", code: "UNAVAILABLE" } }));
    }
  }

  /** Stops taking requests, then waits for the ones being answered. */
  async close(): Promise<void> {
    await Promise.all(this.subs.map((s) => s.drain().catch(() => undefined)));
    await Promise.all([...this.inFlight]);
  }
}

/**
 * Reply subjects a responder answers on: the clients' inboxes (`_INBOX.` by default,
 * `_INBOX_<service>.` for our services), never any other subject.
 */
export const isReplyInbox = (reply: string) => /^_INBOX(_[A-Za-z0-9_-]+)?\./.test(reply);
