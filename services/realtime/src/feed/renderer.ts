import type { ConsumerInfo, JsMsg, PubAck } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { ZodError } from "zod";
import { contextEventsFilter } from "@mam/contracts/envelope.ts";
import { MAILBOX_CONTEXT, parseMailboxEvent } from "@mam/contracts/mailbox-events.ts";
import { feedStreamName, feedSubject, type FeedEvent } from "@mam/contracts/realtime-feed.ts";
import type { Part } from "@mam/service-kit/service.ts";
import { SingleActive } from "@mam/service-kit/single-active.ts";
import type { RealtimeContext } from "../context.ts";
import { BatchConsumer, type Settle } from "@mam/bus/batch-consumer.ts";
import { publishChainedPerKey } from "@mam/bus/events.ts";
import { catchUpPoint, eventsInFeed, SOURCE_SEQ_HEADER } from "./catch-up.ts";
import { fitEntry } from "./fit.ts";
import { showMessages, shownKey } from "./show.ts";
import {
  domainNameOf,
  isMessageEvent,
  isRendered,
  isScoped,
  messageIdOf,
  renderDomainVerified,
  renderMessageEvent,
  type DomainEvent,
  type MessageEvent,
  type Rendered,
  type Scoped,
} from "./render.ts";
import { applyDomainFact } from "./verified-domains.ts";

/** The durable consumer rendering the mailbox's events, shared by every realtime replica. */
export const FEED_DURABLE = "realtime-feed";

/** `evt.mailbox.<tenant>.<workspace>.<type>`: the type, read without parsing the event. */
const typeOf = (msg: JsMsg) => msg.subject.slice(msg.subject.lastIndexOf(".") + 1);

/**
 * Most events rendered together: a batch holds its messages' bodies (up to twice
 * FEED_BODY_MAX_BYTES each, more once escaped as JSON) until its entries are stored, so this
 * bounds a replica's memory under a burst of long mail (about 32 MiB of bodies), and one
 * request per workspace still carries a whole batch (the contract takes 100 ids). At
 * 300 messages/s a batch is a handful of events: what arrived while the last was rendered.
 */
const MAX_BATCH = 64;

export interface RendererOptions {
  /** The event stream. */
  stream: string;
  maxBatch?: number;
}

/**
 * Renders the mailbox's events into the public feed, each once and in stream order per
 * tenant: a batch of events at a time, with one request to the mailbox per workspace for the
 * messages it shows, each entry published with its event id as Nats-Msg-Id (a redelivered
 * event adds nothing), and each event acknowledged once its entry is stored.
 *
 * One replica renders at a time, the holder of a lease (a Postgres session advisory lock);
 * the others stand by and take over within about a second of its end. Sharing the consumer
 * between replicas cannot keep order: each takes its own batches, so a tenant's events held
 * by two replicas reach the feed in either order. Sequencing per tenant among replicas
 * instead would need a consumer (or a pinned one) per tenant, which NATS 2.9 does not have,
 * or a sequence check per entry, which a replica holding a later event could only wait on.
 * One renderer keeps up: a batch costs one mailbox request per workspace, and its entries go
 * pipelined, each stored only after the one sent before it (see render). The holder keeps
 * order across its own batches too (an event it failed to render is tried again before
 * anything of its tenant behind it), and a new holder starts from the consumer's first
 * unacknowledged event (see SingleActive).
 */
export class FeedRenderer implements Part {
  private readonly feed: string;
  private readonly lease: SingleActive;

  constructor(
    private readonly ctx: RealtimeContext,
    private readonly o: RendererOptions,
  ) {
    this.feed = feedStreamName(ctx.bus.prefix);
    this.lease = new SingleActive({
      bus: ctx.bus,
      stream: o.stream,
      durable: FEED_DURABLE,
      databaseUrl: ctx.cfg.DATABASE_URL,
      schema: ctx.cfg.DB_SCHEMA,
      logger: ctx.logger,
      puller: () => this.consumer(),
    });
  }

  /** Whether this replica is the one rendering. */
  get active(): boolean {
    return this.lease.active;
  }

  private consumer(): BatchConsumer {
    const { ctx } = this;
    return new BatchConsumer({
      bus: ctx.bus,
      stream: this.o.stream,
      durable: FEED_DURABLE,
      filterSubject: contextEventsFilter(ctx.bus.prefix, MAILBOX_CONTEXT),
      logger: ctx.logger,
      handle: (batch, settle) => this.render(batch, settle),
      skip: (msg) => !isRendered(typeOf(msg)) || this.inFeedAlready(msg.seq),
      maxBatch: this.o.maxBatch ?? MAX_BATCH,
      ordered: true,
      // A new deployment renders what the feed would still hold, not the whole history; a
      // consumer re-created (by an operator, say) starts where the feed ends.
      startBackMs: ctx.cfg.FEED_RETENTION_S * 1000,
      startAt: () => catchUpPoint(ctx.bus, this.feed),
      onConsumer: (info) => this.learnInFeed(info),
    });
  }

  /** Events the feed held when this replica last subscribed (see eventsInFeed): acknowledged unrendered. */
  private inFeed = new Set<number>();

  private inFeedAlready(seq: number): boolean {
    return this.inFeed.has(seq);
  }

  private async learnInFeed(info: ConsumerInfo): Promise<void> {
    this.inFeed = await eventsInFeed(this.ctx.bus, this.feed, info);
  }

  start(): Promise<void> {
    return this.lease.start();
  }

  stop(): Promise<void> {
    return this.lease.stop();
  }

  private async render(batch: JsMsg[], settle: Settle): Promise<void> {
    const started = performance.now();
    const events: { msg: JsMsg; e: Rendered & Scoped }[] = [];
    for (const msg of batch) {
      const e = this.parse(msg, settle);
      if (e) events.push({ msg, e });
    }
    const messages = events.map((x) => x.e).filter((e): e is MessageEvent & Scoped => isMessageEvent(e));
    const shown = await showMessages(this.ctx, messages);
    const items: Item[] = [];
    for (const { msg, e } of events) {
      const entry = isMessageEvent(e) ? renderMessageEvent(e, shown.get(shownKey(e, messageIdOf(e)))) : await this.domainEntry(e);
      items.push({ msg, tenantId: e.tenantId, entry: entry && this.fitted(entry) });
    }
    // The batch's entries go pipelined in the events' order, each stored only after the one
    // sent before it (publishChained), and each event is acknowledged once its entry is stored.
    // An entry not stored holds back its tenant's later ones (left unsettled, to be tried again
    // in order, so the feed never holds a tenant's later entry before an earlier one); the
    // other tenants' entries go on in another round, up to MAX_HELD tenants held back a batch.
    const { failure, held } = await publishChainedPerKey(items, {
      send: (item, afterId) => (item.entry ? this.publish(item.entry, item.msg.seq, afterId) : undefined),
      idOf: (item) => item.entry!.entry.eventId,
      stored: (item) => settle(item.msg, "ack"),
      // Entries of up to a megabyte: a round holds a few megabytes, so its PubAcks come in time.
      sizeOf: (item) => (item.entry ? Buffer.byteLength(item.entry.json) : 0),
      keyOf: (item) => item.tenantId,
      maxHeld: MAX_HELD,
      connected: () => this.ctx.bus.connected(),
    });
    if (failure) this.ctx.logger.warn({ err: failure, tenantsHeld: held }, "feed entries not stored; will retry");
    this.ctx.logger.debug({ events: batch.length, ms: Math.round(performance.now() - started) }, "feed batch");
  }

  /** The event, or nothing when it is unreadable (terminated, said once) or has no workspace. */
  private parse(msg: JsMsg, settle: Settle): (Rendered & Scoped) | undefined {
    let e: ReturnType<typeof parseMailboxEvent>;
    try {
      e = parseMailboxEvent(msg.json());
    } catch (err) {
      const reason = err instanceof ZodError ? err.issues.slice(0, 3) : (err as Error).message;
      this.ctx.logger.error({ seq: msg.seq, subject: msg.subject, reason }, "unreadable event; terminated");
      settle(msg, "term");
      return undefined;
    }
    if (!isRendered(e.type) || !isScoped(e)) {
      settle(msg, "ack");
      return undefined;
    }
    return e as Rendered & Scoped;
  }

  /** domain.verified on the transition to verified; any other domain event only updates what is known. */
  private async domainEntry(e: DomainEvent & Scoped): Promise<FeedEvent | undefined> {
    const verified = e.type === "DomainChecked" && e.data.status === "verified";
    const domain = e.type === "DomainRemoved" ? e.data.domain : domainNameOf(e.data.records);
    if (verified && !domain) {
      this.ctx.logger.warn({ domainId: e.data.domainId, eventId: e.id }, "verified domain without its name in its records; not announced");
      return undefined;
    }
    const fires = await applyDomainFact(this.ctx.db, {
      workspaceId: e.workspaceId,
      domainId: e.data.domainId,
      domain: domain ?? "",
      eventId: e.id,
      version: e.aggregateVersion,
      verified,
      at: new Date(e.occurredAt),
    });
    return fires && domain ? renderDomainVerified(e as Extract<DomainEvent, { type: "DomainChecked" }> & Scoped, domain) : undefined;
  }

  /** The entry as it will be sent, cut to fit one NATS message (nothing when even that cannot fit: said, and passed over). */
  private fitted(entry: FeedEvent): Fitted | undefined {
    const fit = fitEntry(entry, maxEntryBytes(this.ctx.bus.nc.info?.max_payload));
    if (!fit) {
      this.ctx.logger.error({ eventId: entry.eventId }, "feed entry too large for one NATS message even without its bodies; not published");
      return undefined;
    }
    if (fit.dropped !== "nothing")
      this.ctx.logger.warn({ eventId: entry.eventId, dropped: fit.dropped }, "feed entry too large for one NATS message; sent without");
    return { entry, json: fit.json };
  }

  /** Sends the entry; with `afterId`, to be stored only if that entry is the feed's last message. */
  private publish({ entry, json }: Fitted, sourceSeq: number, afterId: string | undefined): Promise<PubAck> {
    const { bus } = this.ctx;
    const h = headers();
    h.set(SOURCE_SEQ_HEADER, String(sourceSeq));
    return bus.js.publish(feedSubject(bus.prefix, entry), json, {
      msgID: entry.eventId,
      headers: h,
      ...(afterId ? { expect: { lastMsgID: afterId } } : {}),
    });
  }
}

type Fitted = { entry: FeedEvent; json: string };
/** An event of the batch: its entry, if it has one to publish. */
type Item = { msg: JsMsg; tenantId: string; entry?: Fitted };

/** Tenants whose entries one batch holds back before the rest of it waits for the retry too (each costs a round). */
const MAX_HELD = 4;

/** Room for an entry in one NATS message, headers aside. */
const maxEntryBytes = (maxPayload = 1024 * 1024) => maxPayload - 4 * 1024;
