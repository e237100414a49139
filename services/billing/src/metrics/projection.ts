import type { JsMsg } from "@nats-io/jetstream";
import type { Kysely, Transaction } from "kysely";
import { ZodError } from "zod";
import { streamEnd } from "@mam/bus/consumer.ts";
import { EventEnvelope } from "@mam/contracts/envelope.ts";
import { IDENTITY_CONTEXT, WorkspaceCreatedV1 } from "@mam/contracts/identity-events.ts";
import { MAILBOX_CONTEXT, parseMailboxEvent, type MailboxEnvelope } from "@mam/contracts/mailbox-events.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import { startCheckpointedConsumer, type CheckpointedConsumer } from "@mam/service-kit/checkpointed-consumer.ts";
import type { Part } from "@mam/service-kit/service.ts";
import type { BillingDb } from "../db/schema.ts";
import { CounterChanges } from "./counters.ts";

type Tx = Kysely<BillingDb>;

/** The durable consumers' names (infra/nats/nats.conf grants each its own lines). */
export const METRICS_CONSUMER = "billing-metrics";
export const METRICS_WORKSPACES_CONSUMER = "billing-metrics-workspaces";

const COUNTED = new Set(["MessageSent", "MessageReceived", "MessageBounced", "InboxCreated", "InboxDeleted", "DomainAdded", "DomainRemoved"]);

/** The events of a batch that count, read: an unreadable one is logged and passed over (poison). */
function countedEvents(msgs: JsMsg[], logger: Logger): MailboxEnvelope[] {
  const out: MailboxEnvelope[] = [];
  for (const msg of msgs) {
    // The type is the subject's last token: an event that does not count is not even parsed.
    if (!COUNTED.has(msg.subject.slice(msg.subject.lastIndexOf(".") + 1))) continue;
    try {
      const e = parseMailboxEvent(msg.json());
      if (e.tenantId && e.workspaceId) out.push(e);
    } catch (err) {
      if (!(err instanceof ZodError || err instanceof SyntaxError)) throw err;
      logger.error({ err, seq: msg.seq, subject: msg.subject }, "unreadable event; not counted");
    }
  }
  return out;
}

/**
 * Counts a batch of mailbox events (in stream order) into the workspaces' and the inboxes'
 * rows: the events not counted before (`metric_applied`), their workspaces and sent messages
 * recorded with one statement each, the counter changes written together (CounterChanges).
 */
async function applyMailboxBatch(tx: Tx, events: MailboxEnvelope[]): Promise<void> {
  if (!events.length) return;
  const applied = await tx
    .insertInto("metric_applied")
    .values(events.map((e) => ({ event_id: e.id })))
    .onConflict((oc) => oc.doNothing())
    .returning("event_id")
    .execute();
  const fresh = new Set(applied.map((r) => r.event_id));
  const todo = events.filter((e) => fresh.has(e.id) && fresh.delete(e.id));
  if (!todo.length) return;
  const workspaces = new Map(todo.map((e) => [e.workspaceId!, e.tenantId!]));
  await knowWorkspaces(
    tx,
    [...workspaces].map(([workspace_id, tenant_id]) => ({ workspace_id, tenant_id })),
  );
  const sent = todo.flatMap((e) =>
    e.type === "MessageSent" ? [{ message_id: e.data.messageId, workspace_id: e.workspaceId!, inbox_id: e.data.inboxId, bounced: false }] : [],
  );
  if (sent.length)
    await tx
      .insertInto("metric_messages")
      .values(sent)
      .onConflict((oc) => oc.doNothing())
      .execute();
  const changes = new CounterChanges();
  for (const e of todo) await countOne(tx, e, changes);
  await changes.write(tx);
}

async function knowWorkspaces(tx: Tx, rows: { workspace_id: string; tenant_id: string }[]): Promise<void> {
  await tx
    .insertInto("metric_workspaces")
    .values(rows)
    .onConflict((oc) => oc.doNothing())
    .execute();
}

/** One event's changes to the counters (a bounce and an inbox's life need a row of their own first). */
async function countOne(tx: Tx, e: MailboxEnvelope, changes: CounterChanges): Promise<void> {
  const at = new Date(e.occurredAt);
  const w = e.workspaceId!;
  switch (e.type) {
    case "MessageSent":
      changes.add(w, "sent", at, 1);
      changes.add(e.data.inboxId, "sent", at, 1);
      return;
    case "MessageReceived":
      changes.add(w, "received", at, 1);
      changes.add(e.data.inboxId, "received", at, 1);
      return;
    case "MessageBounced": {
      // A message counts as bounced once, at its first bounce, whatever its recipients.
      const m = await tx
        .updateTable("metric_messages")
        .set({ bounced: true })
        .where("message_id", "=", e.data.messageId)
        .where("bounced", "=", false)
        .returning("inbox_id")
        .executeTakeFirst();
      if (!m) return;
      changes.add(w, "bounced", at, 1);
      changes.add(m.inbox_id, "bounced", at, 1);
      return;
    }
    case "InboxCreated": {
      const d = e.data;
      const r = await tx
        .insertInto("metric_inboxes")
        .values({ inbox_id: d.inboxId, workspace_id: w, tenant_id: e.tenantId!, deleted: false })
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst();
      if (Number(r.numInsertedOrUpdatedRows ?? 0) > 0) changes.add(w, "inboxes", at, 1);
      return;
    }
    case "InboxDeleted": {
      const gone = await tx
        .updateTable("metric_inboxes")
        .set({ deleted: true })
        .where("inbox_id", "=", e.data.inboxId)
        .where("deleted", "=", false)
        .executeTakeFirst();
      if (Number(gone.numUpdatedRows) > 0) changes.add(w, "inboxes", at, -1);
      return;
    }
    case "DomainAdded":
      changes.add(w, "domains", at, 1);
      return;
    case "DomainRemoved":
      changes.add(w, "domains", at, -1);
      return;
    default:
      return;
  }
}

/** How long a batch of the mailbox's events waits for more before it is counted. */
const COUNT_LINGER_MS = 100;

/**
 * The metrics counters, kept from the event stream by two durable consumers: the mailbox's
 * events (every event, one filter subject as NATS 2.9 allows), pulled by one replica at a
 * time, in stream order (a bounce is counted against its send, an inbox deletion against its
 * creation: either applied first would be lost), and identity's WorkspaceCreated (so a
 * workspace without mail yet is known to its tenant; order is of no matter), shared. Each
 * event is counted once (`metric_applied`, in the counters' transaction); with no checkpoint
 * (the tables were emptied, or never filled) a consumer is re-created and replays the stream.
 */
export class MetricsProjection implements Part {
  private readonly consumers: CheckpointedConsumer[] = [];

  constructor(
    private readonly b: Backbone<BillingDb>,
    private readonly db: Kysely<BillingDb>,
  ) {}

  async start(): Promise<void> {
    const { b } = this;
    const common = { backbone: b, db: this.db, table: "metric_checkpoint" };
    this.consumers.push(
      await startCheckpointedConsumer({
        ...common,
        durable: METRICS_CONSUMER,
        filterSubject: `${b.bus.prefix}evt.${MAILBOX_CONTEXT}.>`,
        inOrder: true,
        // Nobody waits on a counter by the millisecond: a batch waits a moment for more, so a
        // light stream of mail costs one transaction per few events rather than per event.
        lingerMs: COUNT_LINGER_MS,
        applyBatch: (tx: Transaction<BillingDb>, msgs) => applyMailboxBatch(tx, countedEvents(msgs, b.logger)),
      }),
      await startCheckpointedConsumer({
        ...common,
        durable: METRICS_WORKSPACES_CONSUMER,
        filterSubject: `${b.bus.prefix}evt.${IDENTITY_CONTEXT}.*.*.WorkspaceCreated`,
        apply: (tx, msg) => this.knowCreated(tx, msg),
      }),
    );
  }

  /** Resolves once every consumer has applied what the stream held when this was called (for tests and readiness). */
  async caughtUp(timeoutMs = 60_000): Promise<void> {
    const through = await streamEnd(this.b.bus, this.b.stream);
    for (const c of this.consumers) await waitFor(() => c.caughtUp(through), { timeoutMs, intervalMs: 50, what: "the metrics counters" });
  }

  /** A workspace created, known to its tenant before it has mail (once: the insert is idempotent). */
  private async knowCreated(tx: Transaction<BillingDb>, msg: JsMsg): Promise<void> {
    const d = WorkspaceCreatedV1.parse(EventEnvelope.parse(msg.json()).data);
    await knowWorkspaces(tx, [{ workspace_id: d.workspaceId, tenant_id: d.tenantId }]);
  }

  async stop(): Promise<void> {
    for (const c of this.consumers.splice(0).reverse()) await c.stop();
  }
}
