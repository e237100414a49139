import { headers as natsHeaders, NoRespondersError, TimeoutError, type Msg, type Subscription } from "@nats-io/transport-node";
import { AppError, type ErrorBody } from "@mam/contracts/errors.ts";
import { RpcReply } from "@mam/contracts/rpc.ts";
import { Headers, type ScopeClaims } from "@mam/contracts/scope.ts";
import { rpcSubject } from "@mam/contracts/subjects.ts";
import { ScopeError, type ScopeVerifier } from "@mam/scope/token.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import type { Bus } from "./connection.ts";

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

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const encode = (r: RpcReply) => JSON.stringify(r);

function toErrorBody(err: unknown, logger: Logger): ErrorBody {
  if (err instanceof AppError) return err.toBody();
  if (err instanceof ScopeError) return { error: "Invalid or expired scope token", code: "UNAUTHORIZED" };
  logger.error({ err }, "unhandled error in handler");
  return { error: "Internal error", code: "INTERNAL" };
}

/**
 * Serves commands and queries on `svc.*` subjects in a queue group, so N replicas share
 * the load. Every scoped handler first verifies the scope token: no token, a forged one
 * or an expired one is refused before the handler runs.
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

  handle(subject: string, handler: RpcHandler): void {
    this.listen(subject, async (msg, body, base) => {
      const token = msg.headers?.get(Headers.scope) ?? "";
      const claims = this.verifier.verify(token);
      return handler(body, { ...base, claims, token });
    });
  }

  handlePublic(subject: string, handler: PublicRpcHandler): void {
    this.listen(subject, (_msg, body, base) => handler(body, base));
  }

  private listen(
    subject: string,
    run: (msg: Msg, body: unknown, base: Omit<RpcContext, "claims" | "token">) => Promise<RpcResult>,
  ): void {
    const sub = this.bus.nc.subscribe(rpcSubject(this.bus.prefix, subject), {
      queue: this.queue,
      callback: (err, msg) => {
        if (err) return this.logger.error({ err, subject }, "subscription error");
        const p = this.answer(msg, subject, run).finally(() => this.inFlight.delete(p));
        this.inFlight.add(p);
      },
    });
    this.subs.push(sub);
  }

  private async answer(
    msg: Msg,
    subject: string,
    run: (msg: Msg, body: unknown, base: Omit<RpcContext, "claims" | "token">) => Promise<RpcResult>,
  ): Promise<void> {
    const rid = msg.headers?.get(Headers.requestId) ?? "";
    const requestId = REQUEST_ID.test(rid) ? rid : "unknown";
    const logger = this.logger.child({ requestId, rpc: subject });
    const started = performance.now();
    let reply: RpcReply;
    try {
      let body: unknown;
      try {
        body = msg.data.length ? msg.json() : {};
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
    if (msg.reply) msg.respond(encode(reply));
  }

  /** Stops taking requests, then waits for the ones being answered. */
  async close(): Promise<void> {
    await Promise.all(this.subs.map((s) => s.drain().catch(() => undefined)));
    await Promise.all([...this.inFlight]);
  }
}

export interface RequestOptions {
  scope?: string;
  requestId?: string;
  timeoutMs?: number;
}

/** Sends a command or query and returns the service's reply; an absent service is a 503. */
export async function request(bus: Bus, subject: string, body: unknown, o: RequestOptions = {}): Promise<RpcReply> {
  const h = natsHeaders();
  if (o.scope) h.set(Headers.scope, o.scope);
  if (o.requestId) h.set(Headers.requestId, o.requestId);
  try {
    const msg = await bus.nc.request(rpcSubject(bus.prefix, subject), JSON.stringify(body ?? {}), {
      timeout: o.timeoutMs ?? 10_000,
      headers: h,
    });
    return RpcReply.parse(msg.json());
  } catch (err) {
    if (err instanceof NoRespondersError || (err as Error)?.cause instanceof NoRespondersError) {
      return { ok: false, error: { error: `Service for ${subject} is not running`, code: "UNAVAILABLE" } };
    }
    if (err instanceof TimeoutError || (err as Error)?.cause instanceof TimeoutError) {
      return { ok: false, error: { error: `Service for ${subject} did not answer in time`, code: "UNAVAILABLE" } };
    }
    throw err;
  }
}
