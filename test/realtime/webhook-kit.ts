import { createHmac, timingSafeEqual } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import pg from "pg";
import { type FeedEvent, feedStreamName, feedSubject, type PublicEventType } from "@mam/contracts/realtime-feed.ts";
import { WEBHOOKS_DURABLE } from "@mam/realtime/webhooks/intake.ts";
import { uuidv7 } from "@mam/runtime/ids.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import type { Stack } from "../support/stack.ts";

/** What a receiver saw of one request. */
export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
  /** When it was read whole (performance.now()). */
  at: number;
}

/** How a path answers: a status, or holding the request open (until released, or the sender gives up). */
type Answer = number | "hang";

/**
 * A webhook receiver, as a customer would run one: node:http on loopback, one path per
 * webhook. Each path answers from its script (then 200), and counts requests open at once.
 */
export class Receiver {
  readonly requests: Received[] = [];
  private readonly scripts = new Map<string, Answer[]>();
  private readonly modes = new Map<string, Answer>();
  private readonly open = new Map<string, number>();
  readonly mostOpen = new Map<string, number>();
  private readonly held = new Map<string, ((status: number) => void)[]>();
  private server?: Server;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const path = req.url ?? "/";
      this.open.set(path, (this.open.get(path) ?? 0) + 1);
      this.mostOpen.set(path, Math.max(this.mostOpen.get(path) ?? 0, this.open.get(path)!));
      res.on("close", () => this.open.set(path, this.open.get(path)! - 1));
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.requests.push({ path, headers: req.headers, raw: Buffer.concat(chunks), at: performance.now() });
        const answer = this.scripts.get(path)?.shift() ?? this.modes.get(path) ?? 200;
        const send = (status: number) => res.writeHead(status, { "content-type": "text/plain" }).end(status >= 400 ? `refused with ${status}\n` : "ok");
        if (answer === "hang") this.held.set(path, [...(this.held.get(path) ?? []), send]);
        else send(answer);
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", () => r()));
  }

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  url(path: string, host = "127.0.0.1"): string {
    return `http://${host}:${this.port}${path}`;
  }

  /** The next answers of a path, in order; after them, its mode (200 unless set). */
  script(path: string, ...answers: Answer[]): void {
    this.scripts.set(path, answers);
  }

  mode(path: string, answer: Answer): void {
    this.modes.set(path, answer);
  }

  /** Answers the requests a path holds open. */
  release(path: string, status: number): void {
    for (const send of this.held.get(path)?.splice(0) ?? []) send(status);
  }

  /** Requests of a path open right now. */
  openAt(path: string): number {
    return this.open.get(path) ?? 0;
  }

  at(path: string): Received[] {
    return this.requests.filter((r) => r.path === path);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }
}

/** `v1=<hex>` of HMAC-SHA256 over the parts, checked in constant time over fixed-length digests. */
function signatureMatches(given: unknown, secret: string, ...parts: (string | Buffer)[]): boolean {
  if (typeof given !== "string" || !/^v1=[0-9a-f]{64}$/.test(given)) return false;
  const h = createHmac("sha256", secret);
  for (const p of parts) h.update(p);
  return timingSafeEqual(Buffer.from(given.slice(3), "hex"), h.digest());
}

/** Both signatures of a delivery, checked over the raw body as a receiver must (before parsing it). */
export function verifies(secret: string, r: Received): boolean {
  const ts = r.headers["x-myagentmail-timestamp"];
  if (typeof ts !== "string" || !/^\d{10}$/.test(ts)) return false;
  return (
    signatureMatches(r.headers["x-myagentmail-signature"], secret, r.raw) && signatureMatches(r.headers["x-myagentmail-signature-ts"], secret, `${ts}.`, r.raw)
  );
}

/** Publishes feed entries as realtime's renderer does (JSON, the event id as Nats-Msg-Id), and reads the webhook intake's progress. */
export class Feed {
  private nc!: NatsConnection;
  private js!: JetStreamClient;
  private jsm!: JetStreamManager;

  constructor(private readonly s: Stack) {}

  async open(): Promise<void> {
    this.nc = await connect({ servers: this.s.iso.urls.NATS_URL });
    this.js = jetstream(this.nc);
    this.jsm = await jetstreamManager(this.nc);
  }

  async publish(e: FeedEvent, msgId: string = e.eventId): Promise<void> {
    await this.js.publish(feedSubject(this.s.iso.prefix, e), JSON.stringify(e), { msgID: msgId });
  }

  /** Every entry published so far has been taken in by the intake (queued) and acknowledged. */
  async intakeCaughtUp(): Promise<void> {
    await waitFor(
      async () => {
        const info = await this.jsm.consumers.info(feedStreamName(this.s.iso.prefix), WEBHOOKS_DURABLE);
        return info.num_pending === 0 && info.num_ack_pending === 0;
      },
      { timeoutMs: 15_000, what: "the webhook intake to take in the feed" },
    );
  }

  async close(): Promise<void> {
    await this.nc?.close();
  }
}

let serial = 0;
/** A message.received entry (or another type) for an inbox of a workspace. */
export function feedEvent(o: { tenantId: string; workspaceId: string; type?: PublicEventType; subject?: string }): FeedEvent {
  const inboxId = uuidv7();
  const now = new Date().toISOString();
  const subject = o.subject ?? `Event ${++serial}`;
  return {
    eventId: `evt_${uuidv7()}`,
    eventType: o.type ?? "message.received",
    tenantId: o.tenantId,
    workspaceId: o.workspaceId,
    inboxId,
    occurredAt: now,
    message: {
      messageId: uuidv7(),
      inboxId,
      threadId: uuidv7(),
      direction: "inbound",
      from: '"Ada" <ada@example.org>',
      fromAddress: "ada@example.org",
      to: ["agent@agents.test"],
      cc: [],
      subject,
      preview: 'Hello, ünïcode and "quotes"',
      plainBody: 'Hello, ünïcode and "quotes"\n',
      htmlBody: null,
      bodyTruncated: false,
      messageIdHeader: `<${uuidv7()}@example.org>`,
      inReplyTo: null,
      attachments: [],
      timestamp: now,
    },
    thread: { threadId: uuidv7(), subject },
  };
}

/** Reads realtime's own tables where the API shows nothing (the queue), as an operator with psql would. */
export class RealtimeTables {
  private readonly client: pg.Client;
  constructor(private readonly s: Stack) {
    this.client = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
  }
  async open(): Promise<void> {
    await this.client.connect();
  }
  /** The queue rows of a webhook: state and attempts, by event. */
  async queueOf(webhookId: string): Promise<{ event_id: string; state: string; attempts: number }[]> {
    const schema = this.s.iso.schema("realtime");
    const r = await this.client.query(`select event_id, state, attempts from ${schema}.webhook_deliveries where webhook_id = $1 order by created_at`, [
      webhookId,
    ]);
    return r.rows;
  }
  async close(): Promise<void> {
    await this.client.end();
  }
}

/**
 * A DNS server on loopback (UDP) answering A queries from its table, AAAA with no record, and
 * nothing at all for the names told to stay silent (a domain whose name servers never answer).
 */
export class DnsServer {
  readonly a = new Map<string, string>();
  readonly silent = new Set<string>();
  /** Names asked, in order (lower case, no trailing dot). */
  readonly asked: string[] = [];
  private socket?: Socket;

  async start(): Promise<void> {
    this.socket = createSocket("udp4");
    this.socket.on("message", (q, from) => {
      const labels: string[] = [];
      let at = 12;
      while (at < q.length && q[at]! > 0) {
        labels.push(q.subarray(at + 1, at + 1 + q[at]!).toString("latin1"));
        at += 1 + q[at]!;
      }
      const name = labels.join(".").toLowerCase();
      const type = q.readUInt16BE(at + 1);
      const question = q.subarray(12, at + 5);
      this.asked.push(name);
      if (this.silent.has(name)) return;
      const address = type === 1 ? this.a.get(name) : undefined;
      const header = Buffer.alloc(12);
      header.writeUInt16BE(q.readUInt16BE(0), 0);
      // A response, recursion desired and available; NXDOMAIN for a name not in the table.
      header.writeUInt16BE(this.a.has(name) ? 0x8180 : 0x8183, 2);
      header.writeUInt16BE(1, 4);
      header.writeUInt16BE(address ? 1 : 0, 6);
      const answer = address
        ? Buffer.concat([Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4]), Buffer.from(address.split(".").map(Number))])
        : Buffer.alloc(0);
      this.socket!.send(Buffer.concat([header, question, answer]), from.port, from.address);
    });
    await new Promise<void>((r) => this.socket!.bind(0, "127.0.0.1", () => r()));
  }

  /** `127.0.0.1:<port>`, as a resolver's server list takes it. */
  get server(): string {
    return `127.0.0.1:${this.socket!.address().port}`;
  }

  stop(): void {
    this.socket?.close();
  }
}
