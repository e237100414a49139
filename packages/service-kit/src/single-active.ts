import { restartAtAckFloor } from "@mam/bus/ack-floor.ts";
import type { Bus } from "@mam/bus/connection.ts";
import { consumerCaughtUp, consumerCaughtUpThrough } from "@mam/bus/consumer.ts";
import { SessionLease } from "@mam/db/lease.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import type { Backbone } from "./backbone.ts";

/** What pulls from the durable consumer on the replica holding the lease. */
export interface Puller {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface SingleActiveOptions {
  bus: Bus;
  stream: string;
  durable: string;
  /** The Postgres that holds the lease, and the deployment's schema there (with the subject prefix, part of the lease's name). */
  databaseUrl: string;
  schema: string;
  logger: Logger;
  /** A new puller of `durable`, each time this replica takes the lease. */
  puller: () => Puller;
}

/**
 * A durable consumer pulled by one replica at a time, so its messages are handled in stream
 * order: replicas sharing a consumer each take their own batches, and a tenant's events held
 * by two of them are applied in either order (the tenant's lock serialises them, it does not
 * order them). The holder of a lease (a Postgres session advisory lock, see SessionLease)
 * pulls; the others stand by and take over within about a second of its end, the consumer
 * re-created at its ack floor first, so what the last holder left unacknowledged comes before
 * anything behind it. Whatever the last holder did handle comes again and must be found done.
 */
export class SingleActive {
  private readonly lease: SessionLease;
  private current?: Puller;

  constructor(private readonly o: SingleActiveOptions) {
    this.lease = new SessionLease({
      url: o.databaseUrl,
      // Per deployment: its schema and subject prefix (tests run many on one database).
      name: `${o.durable}:${o.schema}:${o.bus.prefix}`,
      logger: o.logger,
      acquired: () => this.activate(),
      lost: () => this.standBy(),
    });
  }

  /** Whether this replica is the one pulling. */
  get active(): boolean {
    return this.lease.holding;
  }

  /** Resolves once this replica has tried the lease (and, holding it, started pulling). */
  start(): Promise<void> {
    return this.lease.start();
  }

  stop(): Promise<void> {
    return this.lease.stop();
  }

  /** Whether the consumer has had everything up to `through` handled, by whichever replica holds it (see consumerCaughtUp). */
  caughtUp(through: number): Promise<boolean> {
    return consumerCaughtUp(this.o.bus, this.o.stream, this.o.durable, through);
  }

  /** How far the consumer has had everything handled (see consumerCaughtUpThrough). */
  caughtUpThrough(): Promise<number> {
    return consumerCaughtUpThrough(this.o.bus, this.o.stream, this.o.durable);
  }

  private async activate(): Promise<void> {
    const { o } = this;
    if (await restartAtAckFloor(o.bus, o.stream, o.durable))
      o.logger.info({ durable: o.durable }, "consumer taken over: resuming from the first message not acknowledged");
    // The lease may have gone meanwhile (its connection broke): another replica pulls then.
    if (!this.lease.holding) return;
    this.current = o.puller();
    await this.current.start();
    if (!this.lease.holding) await this.standBy();
  }

  private async standBy(): Promise<void> {
    const current = this.current;
    this.current = undefined;
    await current?.stop();
  }
}

/** A service's durable consumer `durable` of its stream, pulled by one replica at a time, with the lease in the service's own store. */
export const singleActiveOf = (b: Backbone<any>, durable: string, puller: () => Puller): SingleActive =>
  new SingleActive({ bus: b.bus, stream: b.stream, durable, databaseUrl: b.store.url, schema: b.store.schema, logger: b.logger, puller });
