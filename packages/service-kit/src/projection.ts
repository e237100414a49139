import { setTimeout as delay } from "node:timers/promises";
import type { JsMsg } from "@nats-io/jetstream";
import type { Kysely } from "kysely";
import { ZodError } from "zod";
import { deleteConsumer, DurableConsumer, streamEnd } from "@mam/bus/consumer.ts";
import { contextEventsFilter, type EventEnvelope } from "@mam/contracts/envelope.ts";
import type { Backbone } from "./backbone.ts";
import { applyConsumed, checkpointOf, type ProjectionTables } from "./event-sourcing.ts";
import { RebuildablePuller } from "./rebuild.ts";
import { lockReplay } from "./rebuild-guard.ts";
import { rebuildRecorded } from "./rebuild-guard.ts";
import type { RecentlyApplied } from "./recent.ts";
import { type SingleActive, singleActiveOf } from "./single-active.ts";

/** A read model kept by a durable consumer. */
export interface ProjectionSpec {
  /** Name of the checkpoint rows; also the durable consumer's name. */
  name: string;
  filterSubject: (prefix: string) => string;
  handle: (msg: JsMsg) => Promise<void>;
  isPoison?: (err: unknown) => boolean;
  /** Its own service's events: those this process applied inline are acknowledged without being handled. */
  skipRecent?: boolean;
  /** Every table it writes: with them, an operator may rebuild it while the service runs (rebuild.ts). */
  tables?: string[];
}

/**
 * Starts a read model's durable consumer, pulled by one replica at a time (see SingleActive):
 * a read model applies a tenant's events in stream order. A read model without a checkpoint
 * was dropped or never built, so its consumer is recreated to replay from the first event.
 * Resolves once it has caught up, on every replica, the one pulling or one standing by:
 * decisions are taken against it, so nothing is served before.
 */
export async function startProjection(b: Backbone<any>, p: ProjectionSpec, recent?: RecentlyApplied, service?: string): Promise<SingleActive> {
  await claimReplay(b, p.name);
  const durable = ({ skipRecent }: { skipRecent: boolean }) => {
    // Only the puller skips: a standby's inline applications are found applied by the holder.
    const skip = p.skipRecent && skipRecent ? recent : undefined;
    return new DurableConsumer({
      bus: b.bus,
      stream: b.stream,
      durable: p.name,
      filterSubject: p.filterSubject(b.bus.prefix),
      logger: b.logger,
      // The event id is the message's Nats-Msg-Id (the relay publishes it so).
      handle: skip ? (msg) => (skip.take(msg.headers?.get("Nats-Msg-Id")) ? Promise.resolve() : p.handle(msg)) : p.handle,
      isPoison: p.isPoison,
      ordered: true,
      // A holder that crashed is replaced within a second, its unacknowledged events
      // delivered again at once (restartAtAckFloor); the ack wait only bounds a holder that
      // lost its lease unnoticed.
      ackWaitMs: 10_000,
    });
  };
  const { tables } = p;
  const consumer = singleActiveOf(b, p.name, () =>
    tables && service ? new RebuildablePuller({ backbone: b, service, projection: p.name, tables, puller: durable }) : durable({ skipRecent: true }),
  );
  await consumer.start();
  try {
    await untilCaughtUp(b, p.name, consumer);
  } catch (err) {
    await consumer.stop();
    throw err;
  }
  return consumer;
}

/** How long a read model may take to catch up at start, unless it is being rebuilt. */
const CATCH_UP_MS = 10 * 60_000;
const PROGRESS_EVERY_MS = 30_000;

/**
 * Until the read model has caught up. A replica that starts while an operator's rebuild
 * replays a long stream waits for as long as it takes, saying how far it has got (giving
 * up would only have it restarted and wait again); otherwise it gives up after CATCH_UP_MS.
 */
async function untilCaughtUp(b: Backbone<any>, name: string, consumer: SingleActive): Promise<void> {
  const started = Date.now();
  // What the stream held at the start: caught up with that (what comes later, it keeps applying).
  const through = await streamEnd(b.bus, b.stream);
  let said = 0;
  for (;;) {
    if (await consumer.caughtUp(through)) return;
    const now = Date.now();
    if (now - started > CATCH_UP_MS) {
      const rebuild = await rebuildRecorded(b.db, name);
      if (!rebuild) throw new Error(`timed out waiting for ${name} read model`);
      if (now - said >= PROGRESS_EVERY_MS) {
        said = now;
        const info = await b.bus.jsm.consumers.info(b.stream, name).catch(() => undefined);
        b.logger.info(
          { projection: name, targetSeq: rebuild.targetSeq, appliedSeq: info?.ack_floor.stream_seq ?? 0, startedAt: rebuild.startedAt },
          "waiting for the read model's rebuild to finish before serving",
        );
      }
    }
    await delay(50);
  }
}

/**
 * A read model without a checkpoint (dropped, or never built) is replayed: its consumer is
 * deleted, to be declared anew from the first event. One replica does it: under a lock, the
 * first to find no checkpoint deletes the consumer and writes an empty checkpoint, so a
 * replica starting at the same moment does not delete the consumer the first one is already
 * reading (its pull would go unanswered until its heartbeats are missed). Every replica
 * claims as it starts, holder of the lease or not: one standing by must not find the old
 * consumer caught up over an emptied read model (its holder re-creates the consumer).
 */
async function claimReplay(b: Backbone<any>, projection: string): Promise<void> {
  await (b.db as Kysely<ProjectionTables>).transaction().execute(async (tx) => {
    await lockReplay(tx, b, projection);
    if ((await checkpointOf(tx, projection)) !== undefined) return;
    await deleteConsumer(b.bus, b.stream, projection);
    await tx.insertInto("projection_checkpoint").values({ projection, tenant_key: "", stream_seq: 0, updated_at: new Date() }).execute();
  });
}

/**
 * Deletes a read model an earlier release kept (see ServiceSpec.retiredProjections): its
 * consumer, then its checkpoints, under the replay lock as a claim is made. What it applied
 * stays recorded as applied, so the read models replacing it, replaying from the first event,
 * apply each event once.
 */
export async function retireProjection(b: Backbone<any>, projection: string): Promise<void> {
  await (b.db as Kysely<ProjectionTables>).transaction().execute(async (tx) => {
    await lockReplay(tx, b, projection);
    await deleteConsumer(b.bus, b.stream, projection);
    await tx.deleteFrom("projection_checkpoint").where("projection", "=", projection).execute();
  });
}

/**
 * A service's read model of its own events: each parsed (an unreadable one is poison),
 * then applied once under its tenant's lock, so it never races a command of that tenant.
 */
export function ownEventsProjection<DB, E extends Pick<EventEnvelope, "id" | "workspaceId" | "tenantId">>(o: {
  name: string;
  context: string;
  db: Kysely<DB>;
  parse: (json: unknown) => E;
  apply: (tx: Kysely<DB>, event: E, streamSeq: number) => Promise<unknown>;
  tables?: string[];
}): ProjectionSpec {
  return {
    name: o.name,
    tables: o.tables,
    filterSubject: (prefix) => contextEventsFilter(prefix, o.context),
    isPoison: (err) => err instanceof ZodError,
    skipRecent: true,
    handle: async (msg) => {
      const event = o.parse(msg.json());
      await applyConsumed(o.db, o.context, event, (tx) => o.apply(tx, event, msg.seq));
    },
  };
}
