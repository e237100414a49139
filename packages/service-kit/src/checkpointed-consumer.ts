import type { JsMsg } from "@nats-io/jetstream";
import { sql, type Kysely, type Transaction } from "kysely";
import { ZodError } from "zod";
import { BatchConsumer } from "@mam/bus/batch-consumer.ts";
import { deleteConsumer, DurableConsumer } from "@mam/bus/consumer.ts";
import type { Backbone } from "./backbone.ts";
import { type SingleActive, singleActiveOf } from "./single-active.ts";

/** A running checkpointed consumer: whether it has caught up (whoever pulls), and stop. */
export type CheckpointedConsumer = Pick<SingleActive, "caughtUp" | "caughtUpThrough" | "stop">;

/**
 * A durable consumer (shared by a service's replicas) whose read model keeps how far it is
 * in a checkpoint table of its own (`consumer`, `stream_seq`), written in the same
 * transaction as what it applies. No checkpoint row means the read model was emptied or
 * never built: the consumer is re-created and replays the stream from the start (the row is
 * written at once, under a lock, so a replica starting next or at the same moment does not
 * drop it again). A read model that needs the stream's order (a later event undoing or
 * completing an earlier one) is `inOrder`: one replica pulls at a time (SingleActive);
 * otherwise every replica pulls its own share.
 *
 * An in-order read model may take its events a batch at a time (`applyBatch`): whatever
 * arrived while the last batch was applied is applied in one transaction with one checkpoint,
 * so under load a statement and a commit serve many events. A batch that fails is tried
 * again, whole and first in line.
 */
export async function startCheckpointedConsumer<DB>(
  o: {
    backbone: Backbone<DB>;
    db: Kysely<any>;
    /** The checkpoint table: `consumer` text primary key, `stream_seq` bigint. */
    table: string;
    durable: string;
    filterSubject: string;
  } & (
    | { apply: (tx: Transaction<any>, msg: JsMsg) => Promise<void>; inOrder?: boolean }
    | {
        /**
         * Applies the events in stream order, in the transaction that records the batch's
         * checkpoint. An event it cannot read is its to log and pass over: a throw retries the
         * whole batch.
         */
        applyBatch: (tx: Transaction<any>, msgs: JsMsg[]) => Promise<void>;
        inOrder: true;
        /** Most events in one batch (256 by default). */
        maxBatch?: number;
        /** How long a batch waits for more once its first event is here (see BatchConsumer). */
        lingerMs?: number;
      }
  ),
): Promise<CheckpointedConsumer> {
  const { backbone: b, db, table } = o;
  b.watchConsumerLag(b.stream, o.durable);
  // Under a lock: of replicas starting together, one deletes the consumer (the others would
  // delete the one it already reads from).
  await db.transaction().execute(async (tx) => {
    await sql`select pg_advisory_xact_lock(hashtextextended(${`replay:${b.store.schema}:${b.bus.prefix}:${table}:${o.durable}`}, 0))`.execute(tx);
    const row = await tx.selectFrom(table).select("stream_seq").where("consumer", "=", o.durable).executeTakeFirst();
    if (row) return;
    await deleteConsumer(b.bus, b.stream, o.durable);
    await tx.insertInto(table).values({ consumer: o.durable, stream_seq: 0 }).execute();
  });
  const checkpoint = (tx: Transaction<any>, seq: number) =>
    tx
      .insertInto(table)
      .values({ consumer: o.durable, stream_seq: seq })
      .onConflict((oc) => oc.column("consumer").doUpdateSet({ stream_seq: sql`greatest(${sql.ref(`${table}.stream_seq`)}, excluded.stream_seq)` }))
      .execute();
  if ("applyBatch" in o) {
    const { applyBatch } = o;
    const batches = singleActiveOf(
      b,
      o.durable,
      () =>
        new BatchConsumer({
          bus: b.bus,
          stream: b.stream,
          durable: o.durable,
          filterSubject: o.filterSubject,
          logger: b.logger,
          ordered: true,
          maxBatch: o.maxBatch,
          lingerMs: o.lingerMs,
          ackWaitMs: 10_000,
          handle: async (msgs, settle) => {
            await db.transaction().execute(async (tx) => {
              await applyBatch(tx, msgs);
              await checkpoint(tx, msgs.at(-1)!.seq);
            });
            for (const m of msgs) settle(m, "ack");
          },
        }),
    );
    await batches.start();
    return batches;
  }
  const { apply } = o;
  const puller = () =>
    new DurableConsumer({
      bus: b.bus,
      stream: b.stream,
      durable: o.durable,
      filterSubject: o.filterSubject,
      logger: b.logger,
      handle: (msg) =>
        db.transaction().execute(async (tx) => {
          await apply(tx, msg);
          await checkpoint(tx, msg.seq);
        }),
      isPoison: (err) => err instanceof ZodError,
      ordered: o.inOrder,
      ackWaitMs: 10_000,
    });
  const consumer = o.inOrder ? singleActiveOf(b, o.durable, puller) : puller();
  await consumer.start();
  return consumer;
}
