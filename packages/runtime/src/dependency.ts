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
