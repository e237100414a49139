import type { ErrorRequestHandler } from "express";
import { sendError } from "./errors.ts";
import type { ForwardRoute } from "./route.ts";

const MESSAGE = "must be valid percent-encoding of UTF-8";

/** `/inboxes/:inboxId/addresses/:address` → a pattern over the raw path capturing each parameter. */
function rawMatcher(r: ForwardRoute): { method: string; pattern: RegExp; names: string[] } {
  const names: string[] = [];
  const source = r.path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/:(\w+)/g, (_m, name: string) => {
    names.push(name);
    return "([^/]+)";
  });
  return { method: r.method.toUpperCase(), pattern: new RegExp(`^/v1${source}/?$`), names };
}

function decodes(segment: string): boolean {
  try {
    decodeURIComponent(segment);
    return true;
  } catch {
    return false;
  }
}

/**
 * Express decodes path parameters itself, once, and passes a segment it cannot decode
 * (`%ZZ`, `%E0%A4%A`) to the error handlers as a URIError: a 400 VALIDATION_ERROR naming
 * the parameter, as any other malformed parameter is answered.
 */
export function malformedPathHandler(routes: readonly ForwardRoute[]): ErrorRequestHandler {
  const matchers = routes.map(rawMatcher);
  return (err, req, res, next) => {
    if (!(err instanceof URIError) || res.headersSent) return next(err);
    const path = req.originalUrl.split("?")[0] ?? "";
    const names = new Set<string>();
    for (const m of matchers) {
      if (m.method !== req.method && !(m.method === "GET" && req.method === "HEAD")) continue;
      const found = m.pattern.exec(path);
      if (!found) continue;
      m.names.forEach((name, i) => {
        if (!decodes(found[i + 1]!)) names.add(name);
      });
    }
    const fields = (names.size ? [...names] : ["path"]).map((path) => ({ path, message: MESSAGE }));
    sendError(res, { error: `Invalid path: ${fields.map((f) => `${f.path}: ${f.message}`).join("; ")}`, code: "VALIDATION_ERROR", fields });
  };
}
