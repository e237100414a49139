import {
  ClosedConnectionError,
  DrainingConnectionError,
  headers as natsHeaders,
  NoRespondersError,
  TimeoutError,
  type Msg,
  type MsgHdrs,
  type Subscription,
} from "@nats-io/transport-node";
import type { z } from "zod";
import { AppError, type ErrorBody } from "@mam/contracts/errors.ts";
import { RpcReply } from "@mam/contracts/rpc.ts";
import { parseRequest, type ReplyOf, type RequestIn, type RequestOf, type RpcContract } from "@mam/contracts/rpc-contract.ts";
import { Headers, type ScopeClaims } from "@mam/contracts/scope.ts";
import { rpcSubject } from "@mam/contracts/subjects.ts";
import { ScopeError, type ScopeVerifier, type VerifyOptions } from "@mam/scope/token.ts";
import { isDependencyOutage } from "@mam/runtime/dependency.ts";
import { currentLogContext, withLogContext } from "@mam/runtime/log-context.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import type { ServiceMetrics } from "@mam/runtime/metrics.ts";
import type { Bus } from "./connection.ts";
import { discardSpilled, INLINE_BYTES, spill, unspill } from "./spill.ts";

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
/** What a caller of a contract gets: its reply body typed, or the service's error. */
export type ContractReply<C extends RpcContract> = { ok: true; status: number; body: ReplyOf<C> } | { ok: false; error: ErrorBody };

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Observes one request: its subject, "ok" or the error code, and when it began (performance.now()). */
type RpcTimer = (subject: string, outcome: string, started: number) => void;
const outcomeOf = (reply: PassedReply) => (reply.ok ? "ok" : reply.error.code);
const timers = new WeakMap<Bus, { server: RpcTimer; client: RpcTimer }>();

/**
 * Times the requests this bus answers and asks, in the service's metrics, by subject (the
 * contract's: `svc.<service>.<resource>.<verb>`, never the deployment's prefix, an id or a
 * tenant) and outcome (`ok` or the error code, a closed set).
 */
export function timeRpc(bus: Bus, metrics: ServiceMetrics): void {
  const timer = (side: "server" | "client", help: string): RpcTimer => {
    const h = metrics.histogram(`mam_rpc_${side}_duration_seconds`, help, ["subject", "outcome"]);
    return (subject, outcome, started) => h.observe({ subject, outcome }, (performance.now() - started) / 1000);
  };
  timers.set(bus, {
    server: timer("server", "Time to answer a request, from its arrival to the reply, by subject and outcome"),
    client: timer("client", "Time a request to another service took, reply included, by subject and outcome"),
  });
}
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
    timers.get(this.bus)?.server(subject, outcomeOf(reply), started);
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

export interface RequestOptions {
  scope?: string;
  requestId?: string;
  timeoutMs?: number;
}

/**
 * Asks a contract's subject with a request of its type. The reply is typed, not parsed again:
 * the service answering built it from the same contract.
 */
export function call<C extends RpcContract>(bus: Bus, contract: C, body: RequestIn<C>, o: RequestOptions = {}): Promise<ContractReply<C>> {
  return request(bus, contract.subject, body, o) as Promise<ContractReply<C>>;
}

/** A contract's reply body; the service's error is thrown as the same AppError. */
export async function callOrThrow<C extends RpcContract>(bus: Bus, contract: C, body: RequestIn<C>, o: RequestOptions = {}): Promise<ReplyOf<C>> {
  const reply = await call(bus, contract, body, o);
  if (!reply.ok) throw AppError.fromBody(reply.error);
  return reply.body;
}

const BUS_DOWN: ErrorBody = { error: "The message bus is unreachable; retry shortly", code: "UNAVAILABLE" };

/** Sends a command or query and returns the service's reply; an absent service, or the bus down, is a 503. */
export function request(bus: Bus, subject: string, body: unknown, o: RequestOptions = {}): Promise<RpcReply> {
  return timed(bus, subject, () => ask(bus, subject, body, o, decodeReply));
}

/**
 * A success reply whose body is the service's JSON as it came, unparsed: for the gateway, which
 * sends it on as it is rather than parse and serialise again what may be a page of messages.
 */
export type PassedReply = { ok: true; status: number; json: Buffer } | RpcReply;

/**
 * `request`, with a success reply's body left as the bytes the service encoded (a reply in
 * any other layout, an error, or a body of bytes, is parsed as `request` would).
 */
export function requestPassingBody(bus: Bus, subject: string, body: unknown, o: RequestOptions = {}): Promise<PassedReply> {
  return timed(bus, subject, () => ask(bus, subject, body, o, passBody));
}

/** Asks, observed from before the request is encoded to its reply. */
async function timed<R extends PassedReply>(bus: Bus, subject: string, asking: () => Promise<R>): Promise<R> {
  const timer = timers.get(bus)?.client;
  if (!timer) return asking();
  const started = performance.now();
  const reply = await asking();
  timer(subject, outcomeOf(reply), started);
  return reply;
}

type Decode<R> = (data: Uint8Array) => R;
const decodeReply: Decode<RpcReply> = (data) => RpcReply.parse(JSON.parse(Buffer.from(data).toString("utf8")));

/** How an answer's encoding (JSON.stringify of `{ ok, status, body }`, see `encode`) begins, its status in it. */
const OK_HEAD = /^\{"ok":true,"status":(\d{3}),"body":/;
const BINARY_HEAD = '{"$binary":';

/** The body's bytes cut out of a success reply, without parsing it; anything else decoded. */
const passBody: Decode<PassedReply> = (data) => {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.length);
  const head = OK_HEAD.exec(bytes.toString("latin1", 0, Math.min(bytes.length, 40)));
  if (!head || bytes[bytes.length - 1] !== 0x7d) return decodeReply(data);
  // A copy: the client's buffer is not ours to keep.
  const json = Buffer.from(bytes.subarray(head[0].length, bytes.length - 1));
  if (json.toString("latin1", 0, BINARY_HEAD.length) === BINARY_HEAD) return decodeReply(data);
  return { ok: true, status: Number(head[1]), json };
};

async function ask<R extends PassedReply>(bus: Bus, subject: string, body: unknown, o: RequestOptions, decode: Decode<R>): Promise<R | RpcReply> {
  // Said at once rather than after the whole timeout: a request sent now would wait in the client's buffer.
  if (!bus.connected()) return { ok: false, error: BUS_DOWN };
  const payload = Buffer.from(JSON.stringify(body ?? {}));
  if (payload.length <= INLINE_BYTES) return exchange(bus, subject, payload, natsHeaders(), o, decode);
  let h: MsgHdrs;
  try {
    h = await spill(bus, payload);
  } catch {
    return { ok: false, error: { error: `The request to ${subject} could not be handed over; retry shortly`, code: "UNAVAILABLE" } };
  }
  const name = h.get(Headers.spilled);
  try {
    return await exchange(bus, subject, new Uint8Array(0), h, o, decode);
  } finally {
    // The service drops what it read; this drops what nobody read (no service answered, say).
    discardSpilled(bus, name);
  }
}

async function exchange<R extends PassedReply>(
  bus: Bus,
  subject: string,
  payload: Uint8Array,
  h: MsgHdrs,
  o: RequestOptions,
  decode: Decode<R>,
): Promise<R | RpcReply> {
  if (o.scope) h.set(Headers.scope, o.scope);
  // A request made while answering another (or handling a message it caused) carries its id on.
  const requestId = o.requestId ?? currentLogContext()?.requestId;
  if (requestId) h.set(Headers.requestId, requestId);
  try {
    const msg = await bus.nc.request(rpcSubject(bus.prefix, subject), payload, {
      timeout: o.timeoutMs ?? 10_000,
      headers: h,
    });
    const spilled = msg.headers?.get(Headers.spilled);
    if (!spilled) return decode(msg.data);
    let data: Uint8Array;
    try {
      data = await unspill(bus, spilled);
    } catch (err) {
      // The AppError of unspill says what a client may know; anything else stays out of the answer.
      return {
        ok: false,
        error: err instanceof AppError ? err.toBody() : { error: `The reply of ${subject} could not be read; retry shortly`, code: "UNAVAILABLE" },
      };
    }
    return decode(data);
  } catch (err) {
    if (err instanceof NoRespondersError || (err as Error)?.cause instanceof NoRespondersError) {
      return { ok: false, error: { error: `Service for ${subject} is not running`, code: "UNAVAILABLE" } };
    }
    if (err instanceof TimeoutError || (err as Error)?.cause instanceof TimeoutError) {
      return { ok: false, error: { error: `Service for ${subject} did not answer in time`, code: "UNAVAILABLE" } };
    }
    // Our own connection to NATS is closed or closing (a shutdown, or a server gone for good).
    if (err instanceof ClosedConnectionError || err instanceof DrainingConnectionError || isDependencyOutage(err)) {
      return { ok: false, error: BUS_DOWN };
    }
    throw err;
  }
}
