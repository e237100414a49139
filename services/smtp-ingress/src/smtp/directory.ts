import type { Consumer, ConsumerMessages } from "@nats-io/jetstream";
import type { Bus } from "@mam/bus/connection.ts";
import { contextEventsFilter } from "@mam/contracts/envelope.ts";
import { MAILBOX_CONTEXT, parseMailboxEvent } from "@mam/contracts/mailbox-events.ts";
import type { Logger } from "@mam/runtime/logger.ts";

export interface Mailbox {
  tenantId: string;
  workspaceId: string;
  inboxId: string;
}

const ADDRESS_EVENTS = new Set(["InboxCreated", "AddressAdded", "AddressRemoved", "InboxDeleted"]);

/**
 * Every address of the platform, in memory, kept from the mailbox's events through an
 * ordered consumer: RCPT is answered without a database round trip.
 */
export class Directory {
  private readonly byAddress = new Map<string, Mailbox>();
  private messages?: ConsumerMessages;
  private consumer?: Consumer;
  private caughtUp = false;
  private processed = 0;

  constructor(
    private readonly bus: Bus,
    private readonly stream: string,
    private readonly logger: Logger,
  ) {}

  lookup(address: string): Mailbox | undefined {
    return this.byAddress.get(address.toLowerCase());
  }

  get size(): number {
    return this.byAddress.size;
  }

  get ready(): boolean {
    return this.caughtUp;
  }

  /**
   * Caught up once the server has nothing left for us and everything it delivered has been
   * applied (an ordered consumer exists only once consuming, so this is asked after that).
   */
  async checkCaughtUp(): Promise<boolean> {
    if (this.caughtUp || !this.consumer) return this.caughtUp;
    const info = await this.consumer.info(false).catch(() => undefined);
    if (info && info.num_pending === 0 && this.processed >= info.delivered.consumer_seq) this.caughtUp = true;
    return this.caughtUp;
  }

  async start(): Promise<void> {
    const consumer = await this.bus.js.consumers.get(this.stream, { filter_subjects: contextEventsFilter(this.bus.prefix, MAILBOX_CONTEXT) });
    this.consumer = consumer;
    this.messages = await consumer.consume();
    void (async () => {
      for await (const m of this.messages!) {
        try {
          const type = m.subject.split(".").at(-1) ?? "";
          // Most mailbox events (every message) say nothing about addresses: not even parsed.
          if (ADDRESS_EVENTS.has(type)) this.apply(m.json());
        } catch (err) {
          this.logger.warn({ err, seq: m.seq }, "directory: unreadable event");
        }
        this.processed++;
        if (m.info.pending === 0) this.caughtUp = true;
      }
    })();
  }

  private apply(raw: unknown): void {
    const e = parseMailboxEvent(raw);
    const at = { tenantId: e.tenantId!, workspaceId: e.workspaceId! };
    switch (e.type) {
      case "InboxCreated":
        this.byAddress.set(e.data.address, { ...at, inboxId: e.data.inboxId });
        return;
      case "AddressAdded":
        this.byAddress.set(e.data.address, { ...at, inboxId: e.data.inboxId });
        return;
      case "AddressRemoved":
        if (this.byAddress.get(e.data.address)?.inboxId === e.data.inboxId) this.byAddress.delete(e.data.address);
        return;
      case "InboxDeleted":
        for (const a of e.data.addresses) if (this.byAddress.get(a)?.inboxId === e.data.inboxId) this.byAddress.delete(a);
        return;
      default:
        return;
    }
  }

  stop(): void {
    this.messages?.stop();
  }
}
