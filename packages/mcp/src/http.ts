import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { AuthInfo } from "@modelcontextprotocol/sdk/server/auth/types.js";
import { isInitializeRequest, isJSONRPCRequest, type JSONRPCMessage, type RequestId } from "@modelcontextprotocol/sdk/types.js";
import type { ErrorBody } from "@mam/contracts/errors.ts";

export type { AuthInfo };

export interface SessionLimits {
  /** Open sessions one owner (an API key) may hold; one more is refused until one closes or expires. */
  perOwner: number;
  /** Open sessions of one group's owners together (a tenant's keys), so that one group cannot take them all. */
  perGroup: number;
  /** Open sessions in all, so that many keys together cannot hold unbounded memory. */
  total: number;
  /** A session without a request for this long is closed. */
  idleMs: number;
  /** A request not answered in this long is answered 504, and its tool call abandoned. */
  requestMs: number;
}

/** JSON-RPC's "request cancelled" (as LSP numbers it): the answer to a request its client cancelled. */
export const REQUEST_CANCELLED = -32800;

/** Why a request was not handed to a session: the HTTP door answers it with `{ error, code }`. */
export interface Refusal {
  status: number;
  body: ErrorBody;
  retryAfterS?: number;
  /** For 405: the methods the endpoint takes. */
  allow?: string;
}

interface Session {
  id: string;
  owner: string;
  /** The owner's group (its tenant) and workspace, when it has them: what a revocation may name. */
  group?: string;
  workspace?: string;
  server: McpServer;
  transport: StreamableHTTPServerTransport;
  lastSeen: number;
  /** HTTP exchanges under way: a session is never expired under one. */
  inFlight: number;
  /** Ends each exchange under way with the refusal given (the session closing). */
  readonly exchanges: Set<(r: Refusal) => void>;
  /** Stops the handler of a request without answering it (its answer can no longer be given). */
  abandon(id: RequestId): void;
}

/**
 * Streamable HTTP sessions, each with its own MCP server, bound to the owner (an API key's
 * id) that opened it: a request of another owner for it is answered as for a session that
 * does not exist. The HTTP door authenticates; this keeps the sessions.
 *
 * Answers are JSON, not SSE streams, and GET (the stream for server-initiated messages) is
 * not offered: the tools are fixed and nothing is pushed, so no response stays open between
 * calls, and none holds a gateway's shutdown up. An exchange ends one way or another: its
 * answer, its client gone, its client's cancellation (answered with a JSON-RPC error: the SDK
 * answers a cancelled request with nothing, which in JSON mode would leave the POST open for
 * ever), the ceiling on its time, or its session closing.
 */
export class McpHttpSessions {
  private readonly sessions = new Map<string, Session>();
  private readonly perOwner = new Map<string, number>();
  private readonly perGroup = new Map<string, number>();
  private lastSweep = 0;

  constructor(
    private readonly limits: SessionLimits,
    private readonly newServer: () => McpServer,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  /**
   * Handles one request of `owner` (already authenticated). `auth` reaches the tools as
   * `extra.authInfo`; `body` is the JSON body when a body parser read it already.
   * Returns a refusal to send, or undefined when the session's transport answered.
   */
  async handle(
    req: IncomingMessage & { auth?: AuthInfo },
    res: ServerResponse,
    o: { owner: string; group?: string; workspace?: string; auth: AuthInfo; body?: unknown },
  ): Promise<Refusal | undefined> {
    this.sweep();
    if (req.method === "GET") {
      return {
        status: 405,
        allow: "POST, DELETE",
        body: { error: "This MCP endpoint sends no server-initiated stream: POST requests, DELETE to end a session", code: "VALIDATION_ERROR" },
      };
    }
    // One HTTP request is one rate-limit token: a batch would carry many tool calls on it, run at once.
    if (Array.isArray(o.body)) return { status: 400, body: { error: "JSON-RPC batches are not accepted", code: "VALIDATION_ERROR" } };
    const given = req.headers["mcp-session-id"];
    const id = Array.isArray(given) ? given[0] : given;
    let s: Session | undefined;
    if (!id) {
      if (req.method !== "POST" || !isInitializeRequest(o.body)) {
        return { status: 400, body: { error: "Mcp-Session-Id header is required: start a session with an initialize request", code: "VALIDATION_ERROR" } };
      }
      // Expired sessions must not count against the limits a new one is checked with.
      this.sweep(true);
      const refused = this.admit(o.owner, o.group);
      if (refused) return refused;
      s = await this.open(o.owner, o.group, o.workspace);
    } else {
      s = this.sessions.get(id);
      if (s && this.expired(s)) {
        void this.close(s);
        s = undefined;
      }
      // Another key's session is not shown to exist: the answer is the one for an unknown id.
      if (!s || s.owner !== o.owner) {
        return { status: 404, body: { error: "MCP session not found (expired, closed, or opened with another key): start a new one", code: "NOT_FOUND" } };
      }
    }
    return this.exchange(s, req, res, o);
  }

  /** One HTTP exchange with a session, counted in its `inFlight` from start to end, once. */
  private async exchange(
    s: Session,
    req: IncomingMessage & { auth?: AuthInfo },
    res: ServerResponse,
    o: { auth: AuthInfo; body?: unknown },
  ): Promise<Refusal | undefined> {
    s.inFlight++;
    s.lastSeen = this.now();
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      s.inFlight--;
      s.lastSeen = this.now();
    };
    // A client that went away ends the exchange for the session, whatever its handler does.
    res.once("close", end);
    let cut: (r: Refusal) => void = () => undefined;
    const cutShort = new Promise<Refusal>((resolve) => {
      cut = resolve;
    });
    s.exchanges.add(cut);
    const timer = setTimeout(
      () => cut({ status: 504, body: { error: `The MCP request was not answered within ${this.limits.requestMs / 1000} s`, code: "UNAVAILABLE" } }),
      this.limits.requestMs,
    );
    req.auth = o.auth;
    try {
      const refused = await Promise.race([s.transport.handleRequest(req, res, o.body).then(() => undefined), cutShort]);
      if (!refused) return undefined;
      // Its answer would come to a response given already: the handler stops, unanswered.
      if (isJSONRPCRequest(o.body)) s.abandon(o.body.id);
      if (res.headersSent) {
        res.destroy();
        return undefined;
      }
      return refused;
    } finally {
      clearTimeout(timer);
      s.exchanges.delete(cut);
      end();
      // An initialize the transport refused leaves no session behind.
      if (!s.transport.sessionId) void this.close(s);
    }
  }

  /** Closes the sessions of an owner (its key revoked), or of a workspace (deleted). */
  async closeOf(which: { owner?: string; workspace?: string }): Promise<void> {
    const gone = [...this.sessions.values()].filter(
      (s) => (which.owner !== undefined && s.owner === which.owner) || (which.workspace !== undefined && s.workspace === which.workspace),
    );
    await Promise.all(gone.map((s) => this.close(s)));
  }

  /** Closes every session (a gateway stopping). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.sessions.values()].map((s) => this.close(s)));
  }

  private admit(owner: string, group: string | undefined): Refusal | undefined {
    if ((this.perOwner.get(owner) ?? 0) >= this.limits.perOwner) {
      const oldest = Math.min(...[...this.sessions.values()].filter((s) => s.owner === owner).map((s) => s.lastSeen));
      return {
        status: 429,
        retryAfterS: Math.max(1, Math.ceil((oldest + this.limits.idleMs - this.now()) / 1000)),
        body: {
          error: `This key has ${this.limits.perOwner} open MCP sessions, the most allowed: end one (DELETE with its Mcp-Session-Id) or wait for an idle one to expire`,
          code: "RATE_LIMITED",
        },
      };
    }
    if (group !== undefined && (this.perGroup.get(group) ?? 0) >= this.limits.perGroup) {
      return {
        status: 429,
        retryAfterS: 5,
        body: { error: `This tenant's keys have ${this.limits.perGroup} open MCP sessions, the most allowed: end one or retry later`, code: "RATE_LIMITED" },
      };
    }
    if (this.sessions.size >= this.limits.total) {
      return { status: 429, retryAfterS: 5, body: { error: "Too many MCP sessions open on this server; retry shortly", code: "RATE_LIMITED" } };
    }
    return undefined;
  }

  /** Registered before its initialize is handled, so that concurrent initializes count against the limits. */
  private async open(owner: string, group: string | undefined, workspace: string | undefined): Promise<Session> {
    const id = randomUUID();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => id, enableJsonResponse: true });
    const server = this.newServer();
    let deliver: (m: JSONRPCMessage) => void = () => undefined;
    const s: Session = {
      id,
      owner,
      group,
      workspace,
      server,
      transport,
      lastSeen: this.now(),
      inFlight: 0,
      exchanges: new Set(),
      abandon: (requestId) => deliver({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId, reason: "not answered in time" } }),
    };
    this.sessions.set(id, s);
    this.perOwner.set(owner, (this.perOwner.get(owner) ?? 0) + 1);
    if (group !== undefined) this.perGroup.set(group, (this.perGroup.get(group) ?? 0) + 1);
    // A DELETE, or close() from here: either way the session is forgotten once.
    transport.onclose = () => this.forget(s);
    await server.connect(transport);
    const toServer = transport.onmessage!;
    deliver = (m) => toServer(m);
    transport.onmessage = (m, extra) => {
      toServer(m, extra);
      // The server has stopped the handler and will not answer: the pending POST gets this error instead.
      if (isCancellation(m)) {
        const answer: JSONRPCMessage = { jsonrpc: "2.0", id: m.params.requestId, error: { code: REQUEST_CANCELLED, message: "Request cancelled" } };
        // Answered already, or never asked: nothing waits for it.
        transport.send(answer).catch(() => undefined);
      }
    };
    return s;
  }

  private forget(s: Session): void {
    if (this.sessions.get(s.id) !== s) return;
    this.sessions.delete(s.id);
    countDown(this.perOwner, s.owner);
    if (s.group !== undefined) countDown(this.perGroup, s.group);
  }

  private async close(s: Session): Promise<void> {
    this.forget(s);
    for (const cut of s.exchanges) cut({ status: 503, body: { error: "The MCP session was closed; start a new one", code: "UNAVAILABLE" } });
    await s.server.close().catch(() => undefined);
  }

  private expired(s: Session): boolean {
    return s.inFlight === 0 && this.now() - s.lastSeen > this.limits.idleMs;
  }

  /** Idle sessions go when the next request comes (at most once a second, unless a new session waits): no timer to stop. */
  private sweep(force = false): void {
    const now = this.now();
    if (!force && now - this.lastSweep < 1000) return;
    this.lastSweep = now;
    for (const s of this.sessions.values()) if (this.expired(s)) void this.close(s);
  }
}

function isCancellation(m: JSONRPCMessage): m is JSONRPCMessage & { method: "notifications/cancelled"; params: { requestId: RequestId } } {
  if (!("method" in m) || m.method !== "notifications/cancelled" || "id" in m) return false;
  const id = (m.params as { requestId?: unknown } | undefined)?.requestId;
  return typeof id === "string" || typeof id === "number";
}

function countDown(counts: Map<string, number>, k: string): void {
  const n = (counts.get(k) ?? 1) - 1;
  if (n > 0) counts.set(k, n);
  else counts.delete(k);
}
