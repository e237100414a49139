import type { ServiceMetrics } from "@mam/runtime/metrics.ts";
import type { Bus } from "./connection.ts";

/** Observes one request: its subject, "ok" or the error code, and when it began (performance.now()). */
export type RpcTimer = (subject: string, outcome: string, started: number) => void;
/** "ok", or the error code of a reply that is one. */
export const outcomeOf = (reply: { ok: true } | { ok: false; error: { code: string } }) => (reply.ok ? "ok" : reply.error.code);
const timers = new WeakMap<Bus, { server: RpcTimer; client: RpcTimer }>();

/**
 * Times the requests this bus answers and asks, in the service's metrics, by subject (the
 * contract's: `svc.<service>.<resource>.<verb>`, never the deployment's prefix, an id or a
 * tenant) and outcome (`ok` or the error code, a closed set).
 */
export function timeRpc(bus: Bus, metrics: ServiceMetrics): void {
  const timer = (side: "server" | "client", help: string): RpcTimer => {
    const h = metrics.histogram(`mam_rpc_${side}_duration_seconds`, help, ["subject", "outcome"]);
    return (subject, outcome, started) => h.observe({ subject, outcome }, (performance.now() - started) / 1000);
  };
  timers.set(bus, {
    server: timer("server", "Time to answer a request, from its arrival to the reply, by subject and outcome"),
    client: timer("client", "Time a request to another service took, reply included, by subject and outcome"),
  });
}

/** The timer of one side of this bus's requests, if its service times them. */
export const rpcTimer = (bus: Bus, side: "server" | "client"): RpcTimer | undefined => timers.get(bus)?.[side];
