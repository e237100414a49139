const HINTS = {
  NATS: "start it with `nats-server -js` (or `docker compose up -d nats`)",
  PostgreSQL: "start it with `pg_ctlcluster 15 main start` (or `docker compose up -d postgres`)",
  Redis: "start it with `redis-server --daemonize yes` (or `docker compose up -d redis`)",
} as const;

export type Dependency = keyof typeof HINTS;

/** Hides the password of a connection URL so it can be printed. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    // A NATS token travels as the user part of the URL.
    if (u.username && !u.password) u.username = "***";
    return u.toString();
  } catch {
    return "(unparseable URL)";
  }
}

/** A server we need is not there. Its message is the one line an operator needs. */
export class DependencyUnavailable extends Error {
  override name = "DependencyUnavailable";
  constructor(
    readonly dependency: Dependency,
    url: string,
    cause: unknown,
  ) {
    const why = cause instanceof Error ? cause.message.split("\n")[0] : String(cause);
    super(`cannot reach ${dependency} at ${redactUrl(url)} (${why}); ${HINTS[dependency]}`);
  }
}

/** Socket errors of a server that is gone, refusing, or unreachable: none is a bug of ours. */
const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EHOSTDOWN", "EAI_AGAIN"]);

/**
 * PostgreSQL's SQLSTATEs of a server that cannot serve now: class 08 (connection
 * exception), 57P01-57P03 (admin or crash shutdown, cannot connect now: starting or in
 * recovery), 53300 (too many connections). A constraint violation or a syntax error is not
 * among them: those are answers, not an outage; nor is 08P01 (protocol violation), which
 * is what Postgres says to a bug of ours, such as a statement with too many parameters.
 */
const PG_UNAVAILABLE = /^(08(?!P01)[0-9A-Z]{3}|57P0[123]|53300)$/;

/** What node-postgres and its pool say, without a code, when the connection is gone or never came. */
const PG_LOST = [
  "timeout exceeded when trying to connect",
  "Connection terminated",
  "timeout expired",
  "Client has encountered a connection error and is not queryable",
  "Client was closed and is not queryable",
];

/** The errors nats.js raises when the connection is closed, draining or down (by class name, so this package needs no NATS client). */
const NATS_DOWN = new Set(["ClosedConnectionError", "DrainingConnectionError", "ConnectionError", "NoResponders", "NoRespondersError", "TimeoutError"]);

/**
 * Whether an error means that a server we depend on cannot be reached or cannot serve now:
 * the caller should answer "unavailable, retry shortly" (503), not "internal error".
 * Looks through `cause` and the errors of an AggregateError (a connect tried on several addresses).
 */
export function isDependencyOutage(err: unknown, depth = 0): boolean {
  if (!(err instanceof Error) || depth > 5) return false;
  if (err instanceof DependencyUnavailable) return true;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && (NETWORK_CODES.has(code) || PG_UNAVAILABLE.test(code))) return true;
  // The server's host name does not resolve (a container stopped: its name is gone with it),
  // or its Unix socket is not there: the connect itself, not a lookup the handler made.
  const syscall = (err as { syscall?: unknown }).syscall;
  if ((code === "ENOTFOUND" && syscall === "getaddrinfo") || (code === "ENOENT" && syscall === "connect")) return true;
  if (NATS_DOWN.has(err.name)) return true;
  if (PG_LOST.some((m) => err.message.startsWith(m))) return true;
  if (err instanceof AggregateError && err.errors.some((e) => isDependencyOutage(e, depth + 1))) return true;
  return isDependencyOutage(err.cause, depth + 1);
}
