import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { METRICS_CONTENT_TYPE, type ServiceMetrics } from "./metrics.ts";

export type ReadinessCheck = () => Promise<Record<string, boolean>>;

/** Readiness answers 200 only while every named check passes. */
export async function readinessBody(check: ReadinessCheck): Promise<{ status: number; body: object }> {
  let checks: Record<string, boolean>;
  try {
    checks = await check();
  } catch {
    checks = { checks: false };
  }
  const ok = Object.values(checks).every(Boolean);
  return { status: ok ? 200 : 503, body: { status: ok ? "ready" : "not_ready", checks } };
}

/**
 * `/healthz` (alive), `/readyz` (able to serve) and, given the service's metrics, `/metrics`
 * (Prometheus): on a port of their own, which only the deployment's network reaches.
 */
export async function startHealthServer(port: number, check: ReadinessCheck, host = "127.0.0.1", metrics?: ServiceMetrics): Promise<Server> {
  const server = createServer((req, res) => {
    const send = (status: number, body: object) => {
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    };
    if (req.method !== "GET") return send(405, { error: "Method not allowed", code: "NOT_FOUND" });
    if (req.url === "/healthz") return send(200, { status: "ok" });
    if (req.url === "/readyz") {
      void readinessBody(check).then((r) => send(r.status, r.body));
      return;
    }
    if (req.url === "/metrics" && metrics) {
      metrics.exposition().then(
        (text) => res.writeHead(200, { "content-type": METRICS_CONTENT_TYPE }).end(text),
        () => send(500, { error: "Metrics could not be collected", code: "INTERNAL" }),
      );
      return;
    }
    send(404, { error: "Not found", code: "NOT_FOUND" });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

export const boundPort = (s: Server) => (s.address() as AddressInfo).port;

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}
