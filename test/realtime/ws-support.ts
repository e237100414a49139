import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { feedSubject, type FeedEvent, type FeedMessage } from "@mam/contracts/realtime-feed.ts";
import type { EventFrame } from "@mam/contracts/ws-frames.ts";
import { webSocketPartOf } from "@mam/realtime/ws/part.ts";
import { uuidv7 } from "@mam/runtime/ids.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { WsClient } from "@mam/testing/ws-client.ts";
import type { Stack } from "../support/stack.ts";

export type Scope = { tenantId: string; workspaceId: string; inboxId: string | null };

/**
 * Feed entries published straight to the feed stream, as realtime's renderer appends them
 * (msgID = eventId): a test decides exactly which events exist and in what order.
 */
export class FeedWriter {
  private nc?: NatsConnection;
  private js?: JetStreamClient;

  constructor(private readonly s: Stack) {}

  async publish(scope: Scope, o: Partial<FeedEvent> = {}): Promise<FeedEvent> {
    if (!this.js) {
      this.nc = await connect({ servers: this.s.iso.urls.NATS_URL });
      this.js = jetstream(this.nc);
    }
    const e: FeedEvent = {
      eventId: `evt_${uuidv7()}`,
      eventType: scope.inboxId ? "message.received" : "domain.verified",
      occurredAt: new Date().toISOString(),
      ...scope,
      ...(scope.inboxId ? { message: feedMessage(scope.inboxId) } : { domain: { domainId: uuidv7(), domain: "example.org" } }),
      ...o,
    };
    await this.js.publish(feedSubject(this.s.iso.prefix, e), JSON.stringify(e), { msgID: e.eventId });
    return e;
  }

  async close(): Promise<void> {
    await this.nc?.close();
  }
}

export function feedMessage(inboxId: string, plainBody = "Hello"): FeedMessage {
  return {
    messageId: uuidv7(),
    inboxId,
    threadId: uuidv7(),
    direction: "inbound",
    from: "ada@example.org",
    fromAddress: "ada@example.org",
    to: ["agent@agents.test"],
    cc: [],
    subject: "A subject",
    preview: plainBody.slice(0, 100),
    plainBody,
    htmlBody: null,
    bodyTruncated: false,
    messageIdHeader: `<${uuidv7()}@example.org>`,
    inReplyTo: null,
    attachments: [],
    timestamp: new Date().toISOString(),
  };
}

export const wsUrl = (s: Stack, path = "/v1/ws", gateway = 0) => `ws://127.0.0.1:${s.gateways[gateway]!.port}${path}`;

/** Connects with a key (X-API-Key unless said otherwise) and waits for the `connected` frame. */
export async function openWs(s: Stack, key: string, o: { path?: string; via?: "header" | "bearer" | "query" } = {}): Promise<WsClient> {
  const path = o.path ?? "/v1/ws";
  const via = o.via ?? "header";
  const url = via === "query" ? `${wsUrl(s, path)}?api_key=${encodeURIComponent(key)}` : wsUrl(s, path);
  const headers: Record<string, string> = via === "header" ? { "X-API-Key": key } : via === "bearer" ? { Authorization: `Bearer ${key}` } : {};
  const c = await WsClient.open(url, headers);
  await c.next((f) => f.type === "connected");
  return c;
}

/** Sends a subscribe frame and waits for its answer (`subscribed` or `error`). */
export async function subscribe(c: WsClient, frame: Record<string, unknown> = {}) {
  c.send({ type: "subscribe", ...frame });
  return c.next((f) => f.type === "subscribed" || f.type === "error");
}

/** The event frame with this id, once it has come. */
export const eventNamed = (c: WsClient, eventId: string, timeoutMs = 10_000) =>
  c.next<EventFrame>((f) => f.type === "event" && f.event_id === eventId, timeoutMs);

/** The ids of the event frames received, in order. */
export const eventIds = (c: WsClient) => c.events<EventFrame>().map((e) => e.event_id);

/** Connections the replicas hold for a tenant, each replica's count. */
export const connectionsOf = (s: Stack, tenantId: string) => s.realtimes.map((r) => webSocketPartOf(r.ctx)?.door.registry.tenantCount(tenantId) ?? 0);

/** Waits for the close of a socket, failing after the bound. */
export async function closedWithin(c: WsClient, ms: number): Promise<{ code: number; reason: string }> {
  let closed: { code: number; reason: string } | undefined;
  void c.closed.then((x) => (closed = x));
  await waitFor(() => closed !== undefined, { timeoutMs: ms, what: "the socket closed" });
  return closed!;
}
