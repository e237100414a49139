import { setTimeout as sleep } from "node:timers/promises";
import type { JsMsg } from "@nats-io/jetstream";
import { streamEnd } from "@mam/bus/consumer.ts";
import type { Kysely, Transaction } from "kysely";
import { EventEnvelope } from "@mam/contracts/envelope.ts";
import { IDENTITY_CONTEXT, WorkspaceCreatedV1, WorkspaceDeletedV1 } from "@mam/contracts/identity-events.ts";
import { InboxCreatedV1, InboxDeletedV1, MAILBOX_CONTEXT } from "@mam/contracts/mailbox-events.ts";
import type { SubscribeFrame } from "@mam/contracts/ws-frames.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import { startCheckpointedConsumer, type CheckpointedConsumer } from "@mam/service-kit/checkpointed-consumer.ts";
import type { RealtimeDb } from "../db/schema.ts";
import { decideSubscription, idsToLook, type Ceiling, type Decision, type DirectoryView } from "./scope.ts";

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

/** A frame waiting for the directory to hold the stream up to `through`. */
interface Behind {
  through: number;
  /** False once the client is gone. */
  wanted: () => boolean;
  done: (held: boolean) => void;
}

/** Past its wait, how long a refusal may wait for a directory that lags (see Directory.judge), and between the checks. */
const BEHIND_MAX_MS = 30_000;
const BEHIND_PAUSE_MS = 200;

/** The durable consumers' names (infra/nats/nats.conf grants each its own lines). */
export const DIRECTORY_CONSUMERS = FOLLOWS.map((f) => f.durable);

/**
 * Which tenant each workspace belongs to and which workspace each inbox, kept in realtime's
 * schema from identity's and the mailbox's events by durable consumers the replicas share.
 */
export class Directory {
  private readonly consumers: CheckpointedConsumer[] = [];
  /** Frames waiting, past their wait, for the directory to hold the stream up to their bound (see judge). */
  private readonly behind = new Set<Behind>();
  private polling = false;

  constructor(
    private readonly b: Backbone<RealtimeDb>,
    private readonly db: Kysely<RealtimeDb>,
  ) {}

  /** Starts following, and resolves once caught up: a subscription is judged against it. */
  async start(): Promise<void> {
    const { b } = this;
    for (const f of FOLLOWS) {
      const filterSubject = `${b.bus.prefix}evt.${f.context}.*.*.${f.type}`;
      const apply = (tx: Transaction<RealtimeDb>, msg: JsMsg) => f.apply(tx, EventEnvelope.parse(msg.json()));
      this.consumers.push(
        await startCheckpointedConsumer({ backbone: b, db: this.db, table: "ws_directory_checkpoint", durable: f.durable, filterSubject, apply }),
      );
    }
    const through = await streamEnd(b.bus, b.stream);
    for (const c of this.consumers) {
      await waitFor(() => c.caughtUp(through), { timeoutMs: 10 * 60_000, intervalMs: 50, what: "the WebSocket directory" });
    }
  }

  /**
   * Asks until the frame is inside the ceiling, or the wait is over (or the client is gone):
   * the directory follows identity and the mailbox by a moment. A refusal always takes the
   * whole wait, so how long it takes does not tell whether the id exists elsewhere. Nor is it
   * given by a directory that lags: past the wait, the directory is asked once more when it
   * holds every event the stream held when the frame was first found wanting, or after
   * BEHIND_MAX_MS more (how long that takes depends on the lag, not on the ids). A frame waiting
   * so long is given up, unanswered, once `superseded` says a newer frame of the client waits.
   */
  async judge(
    ceiling: Ceiling,
    frame: SubscribeFrame,
    waitMs: number,
    wanted: () => boolean,
    superseded: () => boolean = () => false,
  ): Promise<Decision | "superseded"> {
    const started = Date.now();
    const deadline = started + waitMs;
    const ids = idsToLook(ceiling, frame);
    let through: number | undefined;
    // Asked again after 100 ms, then twice as long each time: a client naming ids it may not
    // see, frame after frame, costs the database a handful of queries per wait, not one per 100 ms.
    for (let pause = 100; ; pause *= 2) {
      const decision = decideSubscription(ceiling, frame, await this.view(ids));
      if (decision.ok || !wanted()) return decision;
      through ??= await streamEnd(this.b.bus, this.b.stream).catch(() => undefined);
      if (Date.now() < deadline) {
        await sleep(Math.min(pause, Math.max(1, deadline - Date.now())));
      } else if (through !== undefined) {
        // Held or not within the cap, the directory as it is then is the answer; given up for
        // a newer frame of the client's only while the directory is shown to lag.
        const held = await this.holdsWithin(through, started + waitMs + BEHIND_MAX_MS - Date.now(), () => wanted() && !superseded());
        if (!held && wanted() && superseded()) return "superseded";
        return decideSubscription(ceiling, frame, await this.view(ids));
      } else if (superseded()) {
        return "superseded";
      } else if (Date.now() >= deadline + BEHIND_MAX_MS) {
        return decision;
      } else {
        // The stream's end could not be read: asked again.
        await sleep(BEHIND_PAUSE_MS);
      }
    }
  }

  /**
   * Resolves true once every directory consumer has applied the stream up to `through`, false
   * after `maxMs` or once the client is gone. One poll per replica serves every frame waiting.
   */
  private holdsWithin(through: number, maxMs: number, wanted: () => boolean): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => w.done(false), Math.max(0, maxMs));
      const w: Behind = {
        through,
        wanted,
        done: (held) => {
          clearTimeout(timer);
          this.behind.delete(w);
          resolve(held);
        },
      };
      this.behind.add(w);
      void this.pollBehind();
    });
  }

  /** Each round: how far all four consumers are caught up, which settles every frame bounded at or below it. */
  private async pollBehind(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      while (this.behind.size) {
        const reached = await this.heldThrough();
        for (const w of this.behind) {
          if (w.through <= reached) w.done(true);
          else if (!w.wanted()) w.done(false);
        }
        if (this.behind.size) await sleep(BEHIND_PAUSE_MS);
      }
    } finally {
      this.polling = false;
    }
  }

  /** The furthest stream sequence every directory consumer has applied through; -1 when one cannot tell. */
  private async heldThrough(): Promise<number> {
    if (!this.consumers.length) return -1;
    const each = await Promise.all(this.consumers.map((c) => c.caughtUpThrough().catch(() => -1)));
    return Math.min(...each);
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
