import type { JsMsg } from "@nats-io/jetstream";
import { sql, type Kysely, type Transaction } from "kysely";
import { ZodError } from "zod";
import { deleteConsumer, DurableConsumer } from "@mam/bus/consumer.ts";
import type { Backbone } from "./backbone.ts";
import { SingleActive } from "./single-active.ts";

/** A running checkpointed consumer: whether it has caught up (whoever pulls), and stop. */
export type CheckpointedConsumer = Pick<SingleActive, "caughtUp" | "stop">;

/**
 * A durable consumer (shared by a service's replicas) whose read model keeps how far it is
 * in a checkpoint table of its own (`consumer`, `stream_seq`), written in the same
 * transaction as what it applies. No checkpoint row means the read model was emptied or
 * never built: the consumer is re-created and replays the stream from the start (the row is
 * written at once, under a lock, so a replica starting next or at the same moment does not
 * drop it again). A read model that needs the stream's order (a later event undoing or
 * completing an earlier one) is `inOrder`: one replica pulls at a time (SingleActive);
 * otherwise every replica pulls its own share.
 */
export async function startCheckpointedConsumer<DB>(o: {
  backbone: Backbone<DB>;
  db: Kysely<any>;
  /** The checkpoint table: `consumer` text primary key, `stream_seq` bigint. */
  table: string;
  durable: string;
  filterSubject: string;
  apply: (tx: Transaction<any>, msg: JsMsg) => Promise<void>;
  inOrder?: boolean;
}): Promise<CheckpointedConsumer> {
  const { backbone: b, db, table } = o;
  // Under a lock: of replicas starting together, one deletes the consumer (the others would
  // delete the one it already reads from).
  await db.transaction().execute(async (tx) => {
    await sql`select pg_advisory_xact_lock(hashtextextended(${`replay:${table}:${o.durable}`}, 0))`.execute(tx);
    const row = await tx.selectFrom(table).select("stream_seq").where("consumer", "=", o.durable).executeTakeFirst();
    if (row) return;
    await deleteConsumer(b.bus, b.stream, o.durable);
    await tx.insertInto(table).values({ consumer: o.durable, stream_seq: 0 }).execute();
  });
  const puller = () =>
    new DurableConsumer({
      bus: b.bus,
      stream: b.stream,
      durable: o.durable,
      filterSubject: o.filterSubject,
      logger: b.logger,
      handle: (msg) =>
        db.transaction().execute(async (tx) => {
          await o.apply(tx, msg);
          await tx
            .insertInto(table)
            .values({ consumer: o.durable, stream_seq: msg.seq })
            .onConflict((oc) => oc.column("consumer").doUpdateSet({ stream_seq: sql`greatest(${sql.ref(`${table}.stream_seq`)}, excluded.stream_seq)` }))
            .execute();
        }),
      isPoison: (err) => err instanceof ZodError,
      ordered: o.inOrder,
      ackWaitMs: 10_000,
    });
  const consumer = o.inOrder
    ? new SingleActive({ bus: b.bus, stream: b.stream, durable: o.durable, databaseUrl: b.store.url, schema: b.store.schema, logger: b.logger, puller })
    : puller();
  await consumer.start();
  return consumer;
}
