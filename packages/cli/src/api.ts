import { CliError, requireKey, type Globals } from "./context.ts";

/**
 * One request to the public API with the command's key. A refusal becomes a CliError with
 * the API's own message and code; an unreachable API says which URL it tried.
 */
export async function api<T = any>(
  g: Globals,
  method: string,
  path: string,
  o: { body?: unknown; query?: Record<string, string | undefined> } = {},
): Promise<T> {
  const key = requireKey(g);
  const qs = new URLSearchParams(Object.entries(o.query ?? {}).filter((e): e is [string, string] => e[1] !== undefined)).toString();
  const headers: Record<string, string> = { "x-api-key": key };
  if (o.body !== undefined) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(`${g.url}/v1${path}${qs ? `?${qs}` : ""}`, { method, headers, body: o.body === undefined ? undefined : JSON.stringify(o.body) });
  } catch (err) {
    throw new CliError(`cannot reach the API at ${g.url} (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message})`, "UNAVAILABLE");
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const e = body as { error?: unknown; code?: unknown } | undefined;
    if (typeof e?.error === "string" && typeof e.code === "string") throw new CliError(e.error, e.code);
    throw new CliError(`the API answered ${res.status} ${res.statusText}`, `HTTP_${res.status}`);
  }
  return body as T;
}

/** Every page of a listing (`pagination.nextCursor`), joined. */
export async function allPages<T>(g: Globals, path: string, field: string, query: Record<string, string | undefined> = {}): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await api<Record<string, unknown> & { pagination?: { nextCursor?: string | null } }>(g, "GET", path, { query: { ...query, cursor } });
    out.push(...((page[field] as T[] | undefined) ?? []));
    cursor = page.pagination?.nextCursor ?? undefined;
  } while (cursor);
  return out;
}
