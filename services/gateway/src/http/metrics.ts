import type { NextFunction, Request, Response, Router } from "express";
import type { ServiceMetrics } from "@mam/runtime/metrics.ts";

/** The label of a request no route took (a 404, or one refused before routing: a bad key, a rate limit). */
export const UNMATCHED = "unmatched";

/**
 * Counts requests by method, route and status, and times them by method and route. The
 * route is the pattern that matched (`/v1/inboxes/:inboxId/messages`), never the path
 * asked for: ids would make a series per inbox. `mounted` names the routers' mount points,
 * as a route only knows its path inside its router.
 */
export function httpMetrics(metrics: ServiceMetrics) {
  const requests = metrics.counter("mam_http_requests_total", "HTTP requests answered, by method, route pattern and status", ["method", "route", "status"]);
  const duration = metrics.histogram(
    "mam_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by method and route pattern",
    ["method", "route"],
  );
  const mounts = new WeakMap<object, string>();

  const routeOf = (req: Request): string => {
    const route = req.route as { path?: unknown } | undefined;
    if (!route || typeof route.path !== "string") return UNMATCHED;
    return (mounts.get(route) ?? "") + route.path;
  };

  return {
    middleware(req: Request, res: Response, next: NextFunction): void {
      const started = performance.now();
      res.on("finish", () => {
        const route = routeOf(req);
        requests.inc({ method: req.method, route, status: res.statusCode });
        duration.observe({ method: req.method, route }, (performance.now() - started) / 1000);
      });
      next();
    },
    /** After its routes are declared: the router's routes are shown under `prefix`. */
    mounted(router: Router, prefix: string): void {
      for (const layer of router.stack as { route?: object }[]) if (layer.route) mounts.set(layer.route, prefix);
    },
  };
}
