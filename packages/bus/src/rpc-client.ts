import { ClosedConnectionError, DrainingConnectionError, headers as natsHeaders, NoRespondersError, type MsgHdrs } from "@nats-io/transport-node";
import { AppError, type ErrorBody } from "@mam/contracts/errors.ts";
import { RpcReply } from "@mam/contracts/rpc.ts";
import type { ReplyOf, RequestIn, RpcContract } from "@mam/contracts/rpc-contract.ts";
import { Headers } from "@mam/contracts/scope.ts";
import { rpcSubject } from "@mam/contracts/subjects.ts";
import { isDependencyOutage } from "@mam/runtime/dependency.ts";
import { currentLogContext } from "@mam/runtime/log-context.ts";
import { isTimeout, type Bus } from "./connection.ts";
import { outcomeOf, rpcTimer } from "./rpc-timing.ts";
import { discardSpilled, INLINE_BYTES, spill, unspill } from "./spill.ts";

/** What a caller of a contract gets: its reply body typed, or the service's error. */
export type ContractReply<C extends RpcContract> = { ok: true; status: number; body: ReplyOf<C> } | { ok: false; error: ErrorBody };

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

/** Errors of requests the service did not answer in time: unlike a refusal, the request may still have been carried out. */
const unanswered = new WeakSet<ErrorBody>();
export const wasUnanswered = (error: ErrorBody): boolean => unanswered.has(error);

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
  const timer = rpcTimer(bus, "client");
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
    if (isTimeout(err)) {
      const error: ErrorBody = { error: `Service for ${subject} did not answer in time`, code: "UNAVAILABLE" };
      unanswered.add(error);
      return { ok: false, error };
    }
    // Our own connection to NATS is closed or closing (a shutdown, or a server gone for good).
    if (err instanceof ClosedConnectionError || err instanceof DrainingConnectionError || isDependencyOutage(err)) {
      return { ok: false, error: BUS_DOWN };
    }
    throw err;
  }
}
