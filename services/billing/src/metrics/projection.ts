import type { JsMsg } from "@nats-io/jetstream";
import type { Kysely, Transaction } from "kysely";
import { EventEnvelope } from "@mam/contracts/envelope.ts";
import { IDENTITY_CONTEXT, WorkspaceCreatedV1 } from "@mam/contracts/identity-events.ts";
import { MAILBOX_CONTEXT, parseMailboxEvent, type MailboxEnvelope } from "@mam/contracts/mailbox-events.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import { startCheckpointedConsumer, type CheckpointedConsumer } from "@mam/service-kit/checkpointed-consumer.ts";
import type { Part } from "@mam/service-kit/service.ts";
import type { BillingDb } from "../db/schema.ts";
import { bump } from "./counters.ts";

type Tx = Kysely<BillingDb>;

/** The durable consumers' names (infra/nats/nats.conf grants each its own lines). */
export const METRICS_CONSUMER = "billing-metrics";
export const METRICS_WORKSPACES_CONSUMER = "billing-metrics-workspaces";

const COUNTED = new Set(["MessageSent", "MessageReceived", "MessageBounced", "InboxCreated", "InboxDeleted", "DomainAdded", "DomainRemoved"]);

async function knowWorkspace(tx: Tx, workspaceId: string, tenantId: string): Promise<void> {
  await tx
    .insertInto("metric_workspaces")
    .values({ workspace_id: workspaceId, tenant_id: tenantId })
    .onConflict((oc) => oc.doNothing())
    .execute();
}

/** Counts one mailbox event into the workspace's and the inbox's rows. */
async function applyMailbox(tx: Tx, e: MailboxEnvelope): Promise<void> {
  if (!e.tenantId || !e.workspaceId) return;
  const at = new Date(e.occurredAt);
  const w = e.workspaceId;
  await knowWorkspace(tx, w, e.tenantId);
  switch (e.type) {
    case "MessageSent": {
      const d = e.data;
      await tx
        .insertInto("metric_messages")
        .values({ message_id: d.messageId, workspace_id: w, inbox_id: d.inboxId, bounced: false })
        .onConflict((oc) => oc.doNothing())
        .execute();
      await bump(tx, w, "sent", at, 1);
      await bump(tx, d.inboxId, "sent", at, 1);
      return;
    }
    case "MessageReceived":
      await bump(tx, w, "received", at, 1);
      await bump(tx, e.data.inboxId, "received", at, 1);
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
      await bump(tx, w, "bounced", at, 1);
      await bump(tx, m.inbox_id, "bounced", at, 1);
      return;
    }
    case "InboxCreated": {
      const d = e.data;
      const r = await tx
        .insertInto("metric_inboxes")
        .values({ inbox_id: d.inboxId, workspace_id: w, tenant_id: e.tenantId, deleted: false })
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst();
      if (Number(r.numInsertedOrUpdatedRows ?? 0) > 0) await bump(tx, w, "inboxes", at, 1);
      return;
    }
    case "InboxDeleted": {
      const d = e.data;
      const gone = await tx
        .updateTable("metric_inboxes")
        .set({ deleted: true })
        .where("inbox_id", "=", d.inboxId)
        .where("deleted", "=", false)
        .executeTakeFirst();
      if (Number(gone.numUpdatedRows) > 0) await bump(tx, w, "inboxes", at, -1);
      return;
    }
    case "DomainAdded":
      await bump(tx, w, "domains", at, 1);
      return;
    case "DomainRemoved":
      await bump(tx, w, "domains", at, -1);
      return;
    default:
      return;
  }
}

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
    const follows = [
      { durable: METRICS_CONSUMER, filterSubject: `${b.bus.prefix}evt.${MAILBOX_CONTEXT}.>`, inOrder: true },
      { durable: METRICS_WORKSPACES_CONSUMER, filterSubject: `${b.bus.prefix}evt.${IDENTITY_CONTEXT}.*.*.WorkspaceCreated` },
    ];
    for (const f of follows) {
      this.consumers.push(
        await startCheckpointedConsumer({ backbone: b, db: this.db, table: "metric_checkpoint", ...f, apply: (tx, msg) => this.apply(tx, msg) }),
      );
    }
  }

  /** Resolves once every consumer has applied what the stream held (for tests and readiness). */
  async caughtUp(timeoutMs = 60_000): Promise<void> {
    for (const c of this.consumers) await waitFor(() => c.caughtUp(), { timeoutMs, intervalMs: 50, what: "the metrics counters" });
  }

  private async apply(tx: Transaction<BillingDb>, msg: JsMsg): Promise<void> {
    const raw: unknown = msg.json();
    const env = EventEnvelope.parse(raw);
    const counted = env.context === MAILBOX_CONTEXT ? COUNTED.has(env.type) : env.type === "WorkspaceCreated";
    if (!counted) return;
    const fresh = await tx
      .insertInto("metric_applied")
      .values({ event_id: env.id })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    if (Number(fresh.numInsertedOrUpdatedRows ?? 0) === 0) return;
    if (env.context === MAILBOX_CONTEXT) await applyMailbox(tx, parseMailboxEvent(raw));
    else {
      const d = WorkspaceCreatedV1.parse(env.data);
      await knowWorkspace(tx, d.workspaceId, d.tenantId);
    }
  }

  async stop(): Promise<void> {
    for (const c of this.consumers.splice(0).reverse()) await c.stop();
  }
}
