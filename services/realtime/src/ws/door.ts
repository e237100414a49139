import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { networkInterfaces } from "node:os";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import { z } from "zod";
import { WsClose, WsUpgradeHeaders, type ServerFrame, type SubscribeFrame } from "@mam/contracts/ws-frames.ts";
import { PublicEventId } from "@mam/contracts/realtime-feed.ts";
import type { ErrorBody } from "@mam/contracts/errors.ts";
import { Headers, type ScopeClaims } from "@mam/contracts/scope.ts";
import { boundPort, closeServer } from "@mam/runtime/health.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import { endWithJson } from "@mam/runtime/raw-response.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { ScopeError, type ScopeVerifier } from "@mam/scope/token.ts";
import type { RealtimeConfig } from "../config.ts";
import { WsConnection, type ConnectionDeps } from "./connection.ts";
import { Registry } from "./registry.ts";
import type { Ended, Revocations } from "./revocations.ts";
import { ceilingOf, type Ceiling } from "./scope.ts";

/** Frames far over the client frame cap are not even read: the connection closes with 1009. */
export const WS_MAX_PAYLOAD_BYTES = 64 * 1024;

const InboxHeader = z.uuid();
const EmailHeader = z
  .string()
  .max(320)
  .regex(/^[\x21-\x7e]+$/);

type DoorDeps = Omit<ConnectionDeps, "registry"> & {
  cfg: RealtimeConfig;
  verifier: ScopeVerifier;
  revocations: () => Revocations | undefined;
};

/**
 * The replica's internal WebSocket door. Only the gateway connects: it has checked the key
 * and sends a scope token for realtime (checked here, once: the connection then outlives
 * it, and revocations are watched instead), and the per-inbox path's inbox.
 */
export class WsDoor {
  readonly registry = new Registry<WsConnection>();
  readonly replicaId = randomUUID();
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: WS_MAX_PAYLOAD_BYTES, perMessageDeflate: false, clientTracking: false });
  /** Every socket still open, closing ones included (the registry drops those at once). */
  private readonly sockets = new Set<WebSocket>();
  private server?: Server;
  private pinger?: NodeJS.Timeout;

  constructor(private readonly d: DoorDeps) {}

  get port(): number {
    return boundPort(this.server!);
  }

  /** Where the gateway connects to reach this replica. */
  route(): { host: string; port: number; replicaId: string } {
    return { host: advertisedHost(this.d.cfg.WS_ADVERTISE_HOST, this.d.logger), port: this.port, replicaId: this.replicaId };
  }

  async start(): Promise<void> {
    const server = createServer((_req, res) => {
      res.writeHead(426, { "content-type": "application/json; charset=utf-8", connection: "close" });
      res.end(JSON.stringify({ error: "Upgrade required: this is a WebSocket door", code: "VALIDATION_ERROR" }));
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 10_000;
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.d.cfg.WS_PORT, this.d.cfg.WS_HOST, () => resolve());
    });
    this.server = server;
    const intervalMs = this.d.cfg.WS_PING_INTERVAL_S * 1000;
    this.pinger = setInterval(() => {
      for (const c of this.registry.connections()) c.ping(2 * intervalMs);
    }, intervalMs);
    this.pinger.unref();
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    const admitted = this.admit(req);
    if ("refusal" in admitted) {
      endWithJson(socket, admitted.refusal.status, admitted.refusal.body);
      return;
    }
    const { ceiling, pathInbox, email, lastEventId } = admitted;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, ceiling, pathInbox, email, lastEventId));
  }

  /** The scope token, checked once here, and what the gateway says of the per-inbox path. */
  private admit(
    req: IncomingMessage,
  ): { ceiling: Ceiling; pathInbox: string | null; email: string | null; lastEventId?: string } | { refusal: { status: number; body: ErrorBody } } {
    const header = (name: string) => {
      const v = req.headers[name.toLowerCase()];
      return Array.isArray(v) ? undefined : v;
    };
    let claims: ScopeClaims;
    try {
      claims = this.d.verifier.verify(header(Headers.scope));
    } catch (err) {
      this.d.logger.warn({ reason: err instanceof ScopeError ? err.reason : (err as Error)?.message }, "refused websocket upgrade: scope token");
      return { refusal: { status: 401, body: { error: "Invalid or expired scope token", code: "UNAUTHORIZED" } } };
    }
    const inbox = header(WsUpgradeHeaders.inbox);
    if (inbox !== undefined && !InboxHeader.safeParse(inbox).success)
      return { refusal: { status: 400, body: { error: "Invalid inbox", code: "VALIDATION_ERROR" } } };
    const pathInbox = inbox ?? null;
    const ceiling = ceilingOf(claims, pathInbox);
    if (!ceiling) {
      return claims.tenantId
        ? { refusal: { status: 404, body: { error: "Inbox not found", code: "NOT_FOUND" } } }
        : { refusal: { status: 403, body: { error: "This key has no events to subscribe to", code: "FORBIDDEN" } } };
    }
    const address = header(WsUpgradeHeaders.inboxEmail);
    // The per-inbox path is subscribed as it opens: a resume comes with it, in the query (a
    // subscribe frame's later would replay what was sent live in between again). /v1/ws
    // resumes in its subscribe frame, and passes over the query as it always did.
    const given = pathInbox === null ? undefined : new URLSearchParams((req.url ?? "").split("?")[1] ?? "").get("last_event_id") || undefined;
    if (given !== undefined && !PublicEventId.safeParse(given).success) {
      return { refusal: { status: 400, body: { error: "last_event_id must be an event id", code: "VALIDATION_ERROR" } } };
    }
    return { ceiling, pathInbox, email: address !== undefined && EmailHeader.safeParse(address).success ? address : null, lastEventId: given };
  }

  private accept(ws: WebSocket, ceiling: Ceiling, pathInbox: string | null, email: string | null, lastEventId?: string): void {
    this.sockets.add(ws);
    ws.once("close", () => this.sockets.delete(ws));
    if (this.d.revocations()?.ended(ceiling)) {
      ws.close(WsClose.revoked, "Revoked: the key, its workspace or its inbox has ended");
      return;
    }
    if (this.registry.tenantCount(ceiling.tenantId) >= this.d.cfg.WS_MAX_CONNECTIONS_PER_TENANT) {
      this.d.logger.info({ tenantId: ceiling.tenantId }, "websocket refused: too many connections for the tenant");
      ws.close(WsClose.tooManyConnections, "Too many connections for this tenant");
      return;
    }
    const hello: Extract<ServerFrame, { type: "connected" }> = {
      type: "connected",
      keyKind: ceiling.kind,
      tenantId: ceiling.tenantId,
      workspaceId: ceiling.workspaces === "*" ? null : (ceiling.workspaces[0] ?? null),
      inboxId: ceiling.inboxId,
      email,
    };
    const subscribeAtOnce: SubscribeFrame | undefined =
      pathInbox === null ? undefined : { type: "subscribe", ...(lastEventId && { last_event_id: lastEventId }) };
    const conn = new WsConnection(ws, ceiling, hello, { ...this.d, registry: this.registry }, subscribeAtOnce);
    this.registry.add(conn);
    conn.start();
  }

  /** Closes, within the second, every connection a revocation or deletion ends. */
  endedBy(e: Ended): void {
    const hit = this.registry.select((c) => {
      const { ceiling } = c;
      switch (e.kind) {
        case "key":
          return ceiling.keyId === e.id;
        case "inbox":
          return ceiling.inboxId === e.id;
        case "workspace":
          return c.workspaceOfInbox === e.id || (ceiling.workspaces !== "*" && ceiling.workspaces.includes(e.id));
        default: {
          const unreachable: never = e.kind;
          throw new Error(`unknown end ${unreachable}`);
        }
      }
    });
    if (hit.length) this.d.logger.info({ ended: e.kind, connections: hit.length }, "websocket connections closed: revoked");
    for (const c of hit) c.close(WsClose.revoked, `Revoked: this ${e.kind === "key" ? "key" : e.kind} has ended`);
  }

  /** Every client is told to go (1001: reconnect elsewhere and resume); the stragglers are cut. */
  async stop(): Promise<void> {
    clearInterval(this.pinger);
    for (const c of this.registry.connections()) c.close(WsClose.goingAway, "Server shutting down: reconnect and resume with last_event_id");
    await waitFor(() => this.sockets.size === 0, { timeoutMs: 2_000, intervalMs: 20 }).catch(() => undefined);
    for (const ws of this.sockets) ws.terminate();
    if (this.server?.listening) await closeServer(this.server);
  }
}

let autoHost: string | undefined;
/** `auto`: the first non-internal IPv4 address (each container replica's own); else as configured. */
function advertisedHost(configured: string, logger: Logger): string {
  if (configured !== "auto") return configured;
  if (autoHost) return autoHost;
  const found = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === "IPv4" && !a.internal);
  if (!found) logger.warn("WS_ADVERTISE_HOST=auto found no non-internal IPv4 address; advertising 127.0.0.1");
  autoHost = found?.address ?? "127.0.0.1";
  return autoHost;
}
