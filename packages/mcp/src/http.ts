import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { AuthInfo } from "@modelcontextprotocol/sdk/server/auth/types.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import type { ErrorBody } from "@mam/contracts/errors.ts";

export type { AuthInfo };

export interface SessionLimits {
  /** Open sessions one owner (an API key) may hold; one more is refused until one closes or expires. */
  perOwner: number;
  /** Open sessions in all, so that many keys together cannot hold unbounded memory. */
  total: number;
  /** A session without a request for this long is closed. */
  idleMs: number;
}

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
  server: McpServer;
  transport: StreamableHTTPServerTransport;
  lastSeen: number;
  /** Requests being handled: a session is never expired under one. */
  inFlight: number;
}

/**
 * Streamable HTTP sessions, each with its own MCP server, bound to the owner (an API key's
 * id) that opened it: a request of another owner for it is answered as for a session that
 * does not exist. The HTTP door authenticates; this keeps the sessions.
 *
 * Answers are JSON, not SSE streams, and GET (the stream for server-initiated messages) is
 * not offered: the tools are fixed and nothing is pushed, so no response stays open between
 * calls, and none holds a gateway's shutdown up.
 */
export class McpHttpSessions {
  private readonly sessions = new Map<string, Session>();
  private readonly perOwner = new Map<string, number>();
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
    o: { owner: string; auth: AuthInfo; body?: unknown },
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
      const refused = this.admit(o.owner);
      if (refused) return refused;
      s = await this.open(o.owner);
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
    s.inFlight++;
    s.lastSeen = this.now();
    req.auth = o.auth;
    try {
      await s.transport.handleRequest(req, res, o.body);
    } finally {
      s.inFlight--;
      s.lastSeen = this.now();
      // An initialize the transport refused leaves no session behind.
      if (!s.transport.sessionId) void this.close(s);
    }
    return undefined;
  }

  /** Closes every session (a gateway stopping). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.sessions.values()].map((s) => this.close(s)));
  }

  private admit(owner: string): Refusal | undefined {
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
    if (this.sessions.size >= this.limits.total) {
      return { status: 429, retryAfterS: 5, body: { error: "Too many MCP sessions open on this server; retry shortly", code: "RATE_LIMITED" } };
    }
    return undefined;
  }

  /** Registered before its initialize is handled, so that concurrent initializes count against the limits. */
  private async open(owner: string): Promise<Session> {
    const id = randomUUID();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => id, enableJsonResponse: true });
    const server = this.newServer();
    const s: Session = { id, owner, server, transport, lastSeen: this.now(), inFlight: 0 };
    this.sessions.set(id, s);
    this.perOwner.set(owner, (this.perOwner.get(owner) ?? 0) + 1);
    // A DELETE, or close() from here: either way the session is forgotten once.
    transport.onclose = () => this.forget(s);
    await server.connect(transport);
    return s;
  }

  private forget(s: Session): void {
    if (this.sessions.get(s.id) !== s) return;
    this.sessions.delete(s.id);
    const n = (this.perOwner.get(s.owner) ?? 1) - 1;
    if (n > 0) this.perOwner.set(s.owner, n);
    else this.perOwner.delete(s.owner);
  }

  private async close(s: Session): Promise<void> {
    this.forget(s);
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
