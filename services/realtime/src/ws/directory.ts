import type { JsMsg } from "@nats-io/jetstream";
import { sql, type Kysely } from "kysely";
import { ZodError } from "zod";
import { DurableConsumer } from "@mam/bus/consumer.ts";
import { EventEnvelope } from "@mam/contracts/envelope.ts";
import { IDENTITY_CONTEXT, WorkspaceCreatedV1, WorkspaceDeletedV1 } from "@mam/contracts/identity-events.ts";
import { InboxCreatedV1, InboxDeletedV1, MAILBOX_CONTEXT } from "@mam/contracts/mailbox-events.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import type { RealtimeDb } from "../db/schema.ts";
import type { DirectoryView } from "./scope.ts";

type Tx = Kysely<RealtimeDb>;

/** One event type the directory follows: its own durable consumer (one filter subject each, as NATS 2.9 allows). */
interface Follow {
  durable: string;
  context: string;
  type: string;
  apply: (tx: Tx, e: EventEnvelope) => Promise<void>;
}

/**
 * Tombstones make the order of the four consumers irrelevant: a Created never undoes a
 * Deleted, whichever is applied first, and a redelivery changes nothing.
 */
const FOLLOWS: Follow[] = [
  {
    durable: "realtime-ws-workspace-created",
    context: IDENTITY_CONTEXT,
    type: "WorkspaceCreated",
    apply: async (tx, e) => {
      const d = WorkspaceCreatedV1.parse(e.data);
      await tx
        .insertInto("ws_workspaces")
        .values({ workspace_id: d.workspaceId, tenant_id: d.tenantId, deleted: false })
        .onConflict((oc) => oc.column("workspace_id").doNothing())
        .execute();
    },
  },
  {
    durable: "realtime-ws-workspace-deleted",
    context: IDENTITY_CONTEXT,
    type: "WorkspaceDeleted",
    apply: async (tx, e) => {
      const d = WorkspaceDeletedV1.parse(e.data);
      await tx
        .insertInto("ws_workspaces")
        .values({ workspace_id: d.workspaceId, tenant_id: d.tenantId, deleted: true })
        .onConflict((oc) => oc.column("workspace_id").doUpdateSet({ deleted: true }))
        .execute();
    },
  },
  {
    durable: "realtime-ws-inbox-created",
    context: MAILBOX_CONTEXT,
    type: "InboxCreated",
    apply: async (tx, e) => {
      const d = InboxCreatedV1.parse(e.data);
      await tx
        .insertInto("ws_inboxes")
        .values({ workspace_id: d.workspaceId, inbox_id: d.inboxId, tenant_id: d.tenantId, deleted: false })
        .onConflict((oc) => oc.doNothing())
        .execute();
    },
  },
  {
    durable: "realtime-ws-inbox-deleted",
    context: MAILBOX_CONTEXT,
    type: "InboxDeleted",
    apply: async (tx, e) => {
      const d = InboxDeletedV1.parse(e.data);
      if (!e.tenantId || !e.workspaceId) return;
      await tx
        .insertInto("ws_inboxes")
        .values({ workspace_id: e.workspaceId, inbox_id: d.inboxId, tenant_id: e.tenantId, deleted: true })
        .onConflict((oc) => oc.columns(["workspace_id", "inbox_id"]).doUpdateSet({ deleted: true }))
        .execute();
    },
  },
];

/** The durable consumers' names (infra/nats/nats.conf grants each its own lines). */
export const DIRECTORY_CONSUMERS = FOLLOWS.map((f) => f.durable);

/**
 * Which tenant each workspace belongs to and which workspace each inbox, kept in realtime's
 * schema from identity's and the mailbox's events by durable consumers the replicas share.
 */
export class Directory {
  private readonly consumers: DurableConsumer[] = [];

  constructor(
    private readonly b: Backbone<RealtimeDb>,
    private readonly db: Kysely<RealtimeDb>,
  ) {}

  /** Starts following, and resolves once caught up: a subscription is judged against it. */
  async start(): Promise<void> {
    const { b } = this;
    for (const f of FOLLOWS) {
      // No checkpoint: the directory was dropped or never built; the consumer replays from the first event.
      const row = await this.db.selectFrom("ws_directory_checkpoint").select("stream_seq").where("consumer", "=", f.durable).executeTakeFirst();
      if (!row) {
        await b.bus.jsm.consumers.delete(b.stream, f.durable).catch(() => false);
        // Marked as being built, so that a replica starting next does not drop it again.
        await this.db
          .insertInto("ws_directory_checkpoint")
          .values({ consumer: f.durable, stream_seq: 0 })
          .onConflict((oc) => oc.doNothing())
          .execute();
      }
      const consumer = new DurableConsumer({
        bus: b.bus,
        stream: b.stream,
        durable: f.durable,
        filterSubject: `${b.bus.prefix}evt.${f.context}.*.*.${f.type}`,
        logger: b.logger,
        handle: (msg) => this.apply(f, msg),
        isPoison: (err) => err instanceof ZodError,
        ackWaitMs: 10_000,
      });
      await consumer.start();
      this.consumers.push(consumer);
    }
    for (const c of this.consumers) {
      await waitFor(() => c.caughtUp(), { timeoutMs: 10 * 60_000, intervalMs: 50, what: "the WebSocket directory" });
    }
  }

  private async apply(f: Follow, msg: JsMsg): Promise<void> {
    const e = EventEnvelope.parse(msg.json());
    await this.db.transaction().execute(async (tx) => {
      await f.apply(tx, e);
      await tx
        .insertInto("ws_directory_checkpoint")
        .values({ consumer: f.durable, stream_seq: msg.seq })
        .onConflict((oc) => oc.column("consumer").doUpdateSet({ stream_seq: sql`greatest(ws_directory_checkpoint.stream_seq, excluded.stream_seq)` }))
        .execute();
    });
  }

  /** The live workspaces and inboxes among these ids. */
  async view(ids: { inboxes: readonly string[]; workspaces: readonly string[] }): Promise<DirectoryView> {
    const inboxes = new Map<string, { tenantId: string; workspaceId: string }>();
    const workspaces = new Map<string, { tenantId: string }>();
    if (ids.inboxes.length) {
      const rows = await this.db
        .selectFrom("ws_inboxes")
        .select(["inbox_id", "workspace_id", "tenant_id"])
        .where("inbox_id", "in", [...ids.inboxes])
        .where("deleted", "=", false)
        .execute();
      for (const r of rows) inboxes.set(r.inbox_id, { tenantId: r.tenant_id, workspaceId: r.workspace_id });
    }
    if (ids.workspaces.length) {
      const rows = await this.db
        .selectFrom("ws_workspaces")
        .select(["workspace_id", "tenant_id"])
        .where("workspace_id", "in", [...ids.workspaces])
        .where("deleted", "=", false)
        .execute();
      for (const r of rows) workspaces.set(r.workspace_id, { tenantId: r.tenant_id });
    }
    return { inboxes, workspaces };
  }

  async stop(): Promise<void> {
    for (const c of this.consumers.splice(0).reverse()) await c.stop();
  }
}
