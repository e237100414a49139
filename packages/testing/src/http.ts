export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface CallOptions {
  key?: string;
  /** Send the key as `Authorization: Bearer` instead of `X-API-Key`. */
  bearer?: boolean;
  body?: unknown;
  /** A raw body, sent as it is (malformed JSON, oversized payloads). */
  raw?: string;
  headers?: Record<string, string>;
}

/** A small fetch client for the public API, as an agent's code would call it. */
export function apiClient(baseUrl: string) {
  return async function call<T = any>(method: string, path: string, o: CallOptions = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...o.headers };
    if (o.key) {
      if (o.bearer) headers.authorization = `Bearer ${o.key}`;
      else headers["x-api-key"] = o.key;
    }
    let body: string | undefined;
    if (o.raw !== undefined) body = o.raw;
    else if (o.body !== undefined) body = JSON.stringify(o.body);
    if (body !== undefined) headers["content-type"] ??= "application/json";
    const res = await fetch(`${baseUrl}${path}`, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text so the assertion shows it
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  };
}
export type ApiCall = ReturnType<typeof apiClient>;
