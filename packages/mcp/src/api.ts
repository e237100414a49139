import { ErrorBody } from "@mam/contracts/errors.ts";

export type ApiMethod = "GET" | "POST" | "PATCH" | "DELETE";

/**
 * One call of the public `/v1` API, named by its route as the gateway declares it
 * (`/inboxes/:inboxId/messages`), so that the gateway can run it through that route's own
 * handler and a remote client can fill the path in.
 */
export interface ApiRequest {
  method: ApiMethod;
  /** The route's path under `/v1`, with `:name` parameters. */
  route: string;
  params?: Record<string, string>;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  idempotencyKey?: string;
}

export type ApiResult = { ok: true; status: number; body: unknown } | { ok: false; error: ErrorBody };

/** Runs API calls as one key: over HTTP (stdio server) or inside the gateway. */
export type Api = (r: ApiRequest) => Promise<ApiResult>;

/** `/inboxes/:inboxId` with `{ inboxId }` → `/inboxes/<encoded id>`; a missing parameter is a bug of the tool. */
export function fillRoute(route: string, params: Record<string, string> = {}): string {
  return route.replace(/:(\w+)/g, (_, name: string) => {
    const v = params[name];
    if (v === undefined) throw new Error(`route ${route}: no value for :${name}`);
    return encodeURIComponent(v);
  });
}

/** Query values as the API reads them: strings, the unset ones left out. */
export function queryString(q: ApiRequest["query"] = {}): string {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) s.set(k, String(v));
  const text = s.toString();
  return text ? `?${text}` : "";
}

export interface HttpApiOptions {
  /** The API's base URL, without `/v1` (e.g. `https://api.example.com`). */
  apiUrl: string;
  key: string;
  fetch?: typeof fetch;
  /** How long a call may take, answer read included, before it is given up as UNAVAILABLE. Default: 30 s. */
  timeoutMs?: number;
}

/**
 * The public API over HTTP with one key, sent as `X-API-Key` and nowhere else: errors name
 * the API's URL and the route, never the key. Anything the API does not answer with its
 * `{ error, code }` body (a proxy's page, no connection) becomes an error body too, so that
 * a tool reports it instead of throwing.
 */
export function httpApi(o: HttpApiOptions): Api {
  const base = o.apiUrl.replace(/\/+$/, "");
  const doFetch = o.fetch ?? fetch;
  const timeoutMs = o.timeoutMs ?? 30_000;
  return async (r) => {
    const url = `${base}/v1${fillRoute(r.route, r.params)}${queryString(r.query)}`;
    const headers: Record<string, string> = { "x-api-key": o.key, accept: "application/json" };
    if (r.idempotencyKey) headers["idempotency-key"] = r.idempotencyKey;
    let body: string | undefined;
    if (r.body !== undefined) {
      body = JSON.stringify(r.body);
      headers["content-type"] = "application/json";
    }
    // An API that takes the connection and never answers must not hold the tool call for ever.
    const signal = AbortSignal.timeout(timeoutMs);
    const late = (): ApiResult => ({
      ok: false,
      error: { error: `The API at ${base} did not answer in time (${timeoutMs / 1000} s): ${r.method} ${r.route}`, code: "UNAVAILABLE" },
    });
    let res: Response;
    try {
      res = await doFetch(url, { method: r.method, headers, body, signal });
    } catch (err) {
      if (signal.aborted) return late();
      return { ok: false, error: { error: `Cannot reach the API at ${base}: ${causeOf(err)}`, code: "UNAVAILABLE" } };
    }
    const text = await res.text().catch(() => "");
    if (signal.aborted) return late();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = undefined;
    }
    if (res.ok && parsed !== undefined) return { ok: true, status: res.status, body: parsed };
    const error = ErrorBody.safeParse(parsed);
    if (!res.ok && error.success) return { ok: false, error: error.data };
    const code = res.status === 401 ? "UNAUTHORIZED" : res.status === 404 ? "NOT_FOUND" : res.status >= 500 ? "UNAVAILABLE" : "INTERNAL";
    return { ok: false, error: { error: `The API answered ${res.status} ${res.statusText} without a readable body`, code } };
  };
}

function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
}
