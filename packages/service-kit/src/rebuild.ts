import { setTimeout as delay } from "node:timers/promises";
import { sql, type Kysely } from "kysely";
import { consumerCaughtUp, deleteConsumer, streamEnd } from "@mam/bus/consumer.ts";
import { RpcServer } from "@mam/bus/rpc.ts";
import { AppError } from "@mam/contracts/errors.ts";
import { rebuildSubject, RebuildRequest, type RebuildProgress } from "@mam/contracts/operator.ts";
import { heldLease, leaseStillHeld, type HeldLease } from "@mam/db/lease.ts";
import type { Backbone } from "./backbone.ts";
import { lockReplay, type Rebuild, rebuildLock, rebuildRecorded, recordName } from "./rebuild-guard.ts";
import type { ProjectionTables } from "./event-sourcing.ts";
import { resolveWithIdentity, serveOperator, type KeyResolver } from "./operator-rpc.ts";
import type { Puller } from "./single-active.ts";

/**
 * Rebuilding a read model while its service runs (`mam rebuild <read model>`).
 *
 * The request goes to the replica holding the projection's lease, the only one subscribed
 * to it (RebuildablePuller subscribes while it pulls), so the projection is applied by one
 * replica throughout, in stream order. That replica stops pulling, then in one transaction
 * empties the read model's tables and its checkpoint, records the rebuild (the stream's last
 * sequence at the start: the progress's target) and deletes the durable consumer, which is
 * declared anew from the stream's first event when it pulls again. Reads go on meanwhile and
 * answer from what has been replayed so far; commands are refused until the replay has
 * caught up (see lockForDecision). A replica taking the lease over mid-rebuild finds
 * the record and carries on from the consumer's ack floor.
 *
 * The reset commits only while the server still holds this replica's lease: a replica that
 * took it over meanwhile reads the record under the lock the reset holds until it commits,
 * so it either finds no rebuild because none happened, or finds the one committed.
 */

export interface RebuildableOptions {
  backbone: Backbone<any>;
  /** The service's name: the subject's second token (its NATS user may subscribe to `svc.<service>.>`). */
  service: string;
  projection: string;
  /** Every table the projection writes, emptied by a rebuild (applied_events included when it dedupes there). */
  tables: string[];
  /** A new puller of the durable consumer; `skipRecent: false` while rebuilding (see start). */
  puller: (o: { skipRecent: boolean }) => DrainablePuller;
  /** How the operator's key is resolved (default: asking identity). */
  resolve?: KeyResolver;
}

/** A puller that can stop with nothing it took still being handled, however long that takes (DurableConsumer). */
export interface DrainablePuller extends Puller {
  stop(o?: { drain?: boolean }): Promise<void>;
}

/** How often the holder looks for a rebuild recorded without its knowing (see follow). */
const RECHECK_MS = 3_000;
/** Pauses between tries to pull again after a reset. */
const RESTART_PAUSES_MS = [250, 1_000, 2_000, 5_000];

/** A projection's puller on the lease holder, answering its rebuild requests meanwhile. */
export class RebuildablePuller implements Puller {
  private current?: DrainablePuller;
  private rpc?: RpcServer;
  private rebuild?: Rebuild;
  /** The reset (or take-over) in progress: stopping waits for it, so nothing runs under a lease given up. */
  private resetting?: Promise<unknown>;
  private watching?: Promise<void>;
  private following?: Promise<void>;
  private wakeUp?: () => void;
  private stopped = false;
  /** The lease this puller runs under: SingleActive makes it once the lease is taken. */
  private readonly lease = heldLease();
  /** A reset found the lease gone: this replica stands by any moment, pulling nothing meanwhile. */
  private leaseGone = false;

  constructor(private readonly o: RebuildableOptions) {}

  private get db() {
    return this.o.backbone.db as Kysely<ProjectionTables>;
  }

  async start(): Promise<void> {
    const b = this.o.backbone;
    // Under the lock a reset holds until it commits: a rebuild the last holder was committing
    // as it lost the lease is found here, not missed (the record read before its commit).
    this.rebuild = await this.db.transaction().execute(async (tx) => {
      await lockReplay(tx, b, this.o.projection);
      return rebuildRecorded(tx, this.o.projection);
    });
    // Ids this process applied inline say nothing of an emptied read model: nothing is skipped while rebuilding.
    const first = this.o.puller({ skipRecent: !this.rebuild });
    await first.start();
    this.current = first;
    if (this.rebuild) this.watch();
    this.following = this.follow();
    this.rpc = new RpcServer(b.bus, this.o.service, b.verifier, b.logger);
    serveOperator(this.rpc, rebuildSubject(this.o.service, this.o.projection), RebuildRequest, this.o.resolve ?? resolveWithIdentity(b.bus), async (req) => {
      if (req.action === "start") await this.begin();
      return { status: 200, body: await this.progress() };
    });
    await b.bus.nc.flush();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeUp?.();
    await this.rpc?.close();
    await this.resetting?.catch(() => undefined);
    await this.following;
    await this.watching;
    await this.current?.stop();
    this.current = undefined;
  }

  private begin(): Promise<unknown> {
    if (this.rebuild || this.resetting) throw new AppError("CONFLICT", `${this.o.projection} is being rebuilt already`);
    if (this.stopped || this.leaseGone) throw new AppError("UNAVAILABLE", "This replica is handing the read model over; retry shortly");
    this.resetting = this.reset().finally(() => (this.resetting = undefined));
    return this.resetting;
  }

  private async reset(): Promise<void> {
    const b = this.o.backbone;
    const { projection, tables } = this.o;
    const lease = this.lease;
    if (!lease) throw new Error("a rebuildable projection runs under a lease (SingleActive)");
    // Nothing is applied while the tables are emptied: the only puller stops first, and what
    // it is handling is let finish however long it waits (on a tenant's lock, say): written
    // after the reset, it would be in the emptied model and skipped by the replay as applied.
    await this.current?.stop({ drain: true });
    this.current = undefined;
    try {
      const targetSeq = (await b.bus.jsm.streams.info(b.stream)).state.last_seq;
      const startedAt = new Date();
      await this.db.transaction().execute(async (tx) => {
        // Waits for the commands deciding on the read model now, and holds off new ones.
        await sql`select pg_advisory_xact_lock(${rebuildLock(projection)})`.execute(tx);
        // As a replica claiming a replay at start (projection.ts) does: one at a time.
        await lockReplay(tx, b, projection);
        await this.checkLease(tx, lease);
        await sql`truncate ${sql.join(tables.map((t) => sql.table(t)))}`.execute(tx);
        await tx
          .deleteFrom("projection_checkpoint")
          .where("projection", "in", [projection, recordName(projection)])
          .execute();
        await tx
          .insertInto("projection_checkpoint")
          .values([
            { projection, tenant_key: "", stream_seq: 0, updated_at: startedAt },
            { projection: recordName(projection), tenant_key: "", stream_seq: targetSeq, updated_at: startedAt },
          ])
          .execute();
        // Last, so that a failure before leaves the consumer where it was; a commit failing after
        // replays into the untouched read model, where every event is found applied.
        await deleteConsumer(b.bus, b.stream, projection);
        // Again, after everything: a replica that takes the lease from now on reads the record
        // only once this commits (start, under the replay lock). One that took it before pulled
        // from the consumer just deleted, and may have acknowledged, without applying, events
        // this replica applied inline: the rebuild must not happen.
        await this.checkLease(tx, lease);
      });
      this.rebuild = { targetSeq, startedAt: startedAt.toISOString() };
      b.logger.warn({ projection, targetSeq }, "read model emptied by the operator: replaying the stream");
    } finally {
      // Pulling again either way: from the first event after a reset, from where it was after a failure.
      if (!this.stopped && !this.leaseGone) await this.restart();
    }
  }

  private async checkLease(tx: Kysely<any>, lease: HeldLease): Promise<void> {
    if (await leaseStillHeld(tx, lease)) return;
    this.leaseGone = true;
    this.o.backbone.logger.warn({ projection: this.o.projection }, "lease lost before the read model was emptied: rebuild abandoned");
    throw new AppError("UNAVAILABLE", "This replica lost the read model's lease; retry shortly");
  }

  /**
   * Pulls again, trying until it does or this stops (a pause longer each time): a read model
   * emptied and pulled by nobody would never be rebuilt, nor commands served again.
   */
  private async restart(): Promise<void> {
    const { logger } = this.o.backbone;
    for (let attempt = 0; !this.stopped; attempt++) {
      const p = this.o.puller({ skipRecent: !this.rebuild });
      try {
        await p.start();
        this.current = p;
        if (this.rebuild) this.watch();
        return;
      } catch (err) {
        logger.warn({ err, projection: this.o.projection, attempt: attempt + 1 }, "could not pull the read model's events again; retrying");
        await p.stop().catch(() => undefined);
        await delay(RESTART_PAUSES_MS[Math.min(attempt, RESTART_PAUSES_MS.length - 1)]!);
      }
    }
  }

  /**
   * The backstop of start's read under the replay lock: a rebuild record this holder did not
   * know of (committed by the last holder after this one started) is taken over.
   */
  private async follow(): Promise<void> {
    const { logger } = this.o.backbone;
    while (!this.stopped) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, RECHECK_MS);
        this.wakeUp = () => {
          clearTimeout(t);
          resolve();
        };
      });
      if (this.stopped || this.rebuild || this.resetting || this.leaseGone) continue;
      try {
        const found = await rebuildRecorded(this.db, this.o.projection);
        if (!found || this.stopped || this.rebuild || this.resetting) continue;
        this.resetting = this.takeOver(found).finally(() => (this.resetting = undefined));
        await this.resetting;
      } catch (err) {
        logger.warn({ err, projection: this.o.projection }, "could not look for a rebuild begun elsewhere; trying again");
      }
    }
  }

  private async takeOver(found: Rebuild): Promise<void> {
    const b = this.o.backbone;
    b.logger.warn(
      { projection: this.o.projection, targetSeq: found.targetSeq },
      "a rebuild begun by the last holder found late: replaying from the first event",
    );
    await this.current?.stop({ drain: true });
    this.current = undefined;
    try {
      // What the puller acknowledged without applying meanwhile (events this process had
      // applied inline, since emptied) comes again with the rest: the consumer anew from the
      // first event, whatever was replayed already found applied.
      await deleteConsumer(b.bus, b.stream, this.o.projection);
      this.rebuild = found;
    } finally {
      if (!this.stopped) await this.restart();
    }
  }

  /** Until the consumer has caught up; then the record goes and commands are served again. */
  private watch(): void {
    if (!this.watching) this.watching = this.watchUntilCaughtUp();
  }

  private async watchUntilCaughtUp(): Promise<void> {
    const { logger, bus, stream } = this.o.backbone;
    // The stream's end once nothing waits in the outbox: what the replay must have applied.
    let through: number | undefined;
    try {
      for (;;) {
        await delay(250);
        if (this.stopped || !this.rebuild) return;
        try {
          // Events committed before the reset and not published yet were applied inline, then
          // emptied: the replay has them only once the relay has published them. Asked
          // before the stream's end is read, so whatever was published by then is within it.
          if (await this.unpublished()) {
            through = undefined;
            continue;
          }
          through ??= await streamEnd(bus, stream);
          if (!(await consumerCaughtUp(bus, stream, this.o.projection, through)) || this.stopped) continue;
          const p = await this.progress();
          await this.db.deleteFrom("projection_checkpoint").where("projection", "=", recordName(this.o.projection)).execute();
          logger.warn({ projection: this.o.projection, appliedSeq: p.appliedSeq }, "read model rebuilt");
          this.rebuild = undefined;
        } catch (err) {
          logger.warn({ err, projection: this.o.projection }, "could not check a rebuild's progress; trying again");
        }
      }
    } finally {
      // In the same turn as the loop's end: a rebuild started next finds no watcher and starts one.
      this.watching = undefined;
    }
  }

  /** Whether the service's outbox (if it has one) holds events not published yet. */
  private async unpublished(): Promise<boolean> {
    const has = await sql<{ t: string | null }>`select to_regclass('outbox')::text as t`.execute(this.db);
    if (!has.rows[0]?.t) return false;
    const r = await sql<{ any: boolean }>`select exists (select 1 from outbox where published_at is null) as any`.execute(this.db);
    return !!r.rows[0]?.any;
  }

  async progress(): Promise<RebuildProgress> {
    const b = this.o.backbone;
    const info = await b.bus.jsm.consumers.info(b.stream, this.o.projection).catch(() => undefined);
    return {
      projection: this.o.projection,
      rebuilding: !!this.rebuild || !!this.resetting,
      startedAt: this.rebuild?.startedAt ?? null,
      targetSeq: this.rebuild?.targetSeq ?? 0,
      appliedSeq: info?.ack_floor.stream_seq ?? 0,
      // A consumer not there (being declared anew) has everything still to deliver.
      pending: info ? info.num_pending : 1,
      ackPending: info?.num_ack_pending ?? 0,
      redelivered: info?.num_redelivered ?? 0,
    };
  }
}
