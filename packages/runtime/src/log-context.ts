import { AsyncLocalStorage } from "node:async_hooks";

/**
 * The ids a piece of work is about (a request, a message, an event, a delivery), which every
 * log line written while doing it carries: the logger's mixin reads them from here (see
 * logger.ts), so a handler's logger needs no child made for each request, and code deep
 * inside a handler logs them without being handed them.
 */
export interface LogContext {
  /** The HTTP request's id (X-Request-Id), carried to the services the request reaches. */
  requestId?: string;
  /** Our message id (`msg_…`). */
  messageId?: string;
  /** The event being handled (its envelope id, also its Nats-Msg-Id). */
  eventId?: string;
  /** smtp-ingress's id for mail it accepted, and for the SMTP session that brought it. */
  queueId?: string;
  sessionId?: string;
  /** The RPC subject being answered. */
  rpc?: string;
  [field: string]: string | number | undefined;
}

const store = new AsyncLocalStorage<LogContext>();

/**
 * Runs `fn` with these fields added to those of the work around it, for every line it logs,
 * including from what it awaits and schedules. One object per call, none per line.
 */
export function withLogContext<T>(fields: LogContext, fn: () => T): T {
  const outer = store.getStore();
  return store.run(outer ? { ...outer, ...fields } : { ...fields }, fn);
}

/**
 * Adds fields to the current work's context once they are known (a consumer learns an
 * event's request id only after parsing it). Outside any withLogContext, a no-op.
 */
export function addLogContext(fields: LogContext): void {
  const current = store.getStore();
  if (current) Object.assign(current, fields);
}

/** The current work's fields (undefined outside any withLogContext). Read only. */
export const currentLogContext = (): Readonly<LogContext> | undefined => store.getStore();

/**
 * Runs `fn` outside any work's context: for work done on behalf of many (a group commit of
 * several requests' filings), whose lines must not name only the one that started it.
 */
export const withoutLogContext = <T>(fn: () => T): T => store.exit(fn);
