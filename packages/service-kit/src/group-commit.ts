import type { Kysely } from "kysely";
import { AppError } from "@mam/contracts/errors.ts";
import {
  afterCommit,
  applyAndRecord,
  envelopesOf,
  type CommandContext,
  type CommandMeta,
  type CommandSpec,
  type Envelope,
  type EventDraft,
  type ExecutorOptions,
} from "./commands.ts";
import { BatchedWrites } from "./batched-writes.ts";
import { lockForDecision } from "./rebuild-guard.ts";
import type { EncodedEvent } from "./outbox.ts";
import { TenantBatches } from "./tenant-batches.ts";

interface Pending<DB, E extends { type: string; schemaVersion: number; data: unknown }> {
  meta: CommandMeta;
  spec: CommandSpec<DB, E, unknown, unknown>;
  resolve: (v: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for commands of one kind whose decisions do not read each other's events
 * (sends, say): commands of a tenant that arrive while a batch of that tenant is being
 * committed wait and go together, with one lock, one transaction and one application of all
 * their events. Each command still loads and decides alone, in arrival order, against the
 * state before the batch's events are applied (so only commands that do not read each
 * other's events belong here). A refusal (an AppError from load or decide)
 * refuses that command alone. Any other failure fails the batch, which left nothing behind
 * (its events were outbox rows of its transaction), and its commands are tried again one
 * by one, so one cannot sink the others.
 */
export class GroupCommit<DB, E extends { type: string; schemaVersion: number; data: unknown }> {
  private readonly batches: TenantBatches<Pending<DB, E>>;

  constructor(
    private readonly ctx: CommandContext<DB>,
    private readonly o: ExecutorOptions<DB, E>,
    maxBatch = 64,
  ) {
    this.batches = new TenantBatches({
      take: () => maxBatch,
      commit: (tenantId, batch) => this.commit(tenantId, batch),
      // A failed batch left nothing behind (its events were in its transaction's outbox rows).
      retryAlone: () => true,
      fail: (p, err) => p.reject(err),
    });
  }

  run<S, T>(tenantId: string, meta: CommandMeta, spec: CommandSpec<DB, E, S, T>): Promise<T> {
    return new Promise<T>((resolve, reject) =>
      this.batches.add(tenantId, { meta, spec: spec as CommandSpec<DB, E, unknown, unknown>, resolve: resolve as (v: unknown) => void, reject }),
    );
  }

  private async commit(tenantId: string, batch: Pending<DB, E>[]): Promise<void> {
    const { ctx, o } = this;
    const settled: (() => void)[] = [];
    const envelopes: Envelope<E>[] = [];
    let recorded: EncodedEvent[] = [];
    const run = async (tx: Kysely<DB>) => {
      // The tenant's lock; and never a decision on a read model being emptied and replayed (mam rebuild).
      await lockForDecision(tx, o.context, tenantId, o.projection);
      const decided: { p: Pending<DB, E>; state: unknown; events: EventDraft<E>[] }[] = [];
      for (const p of batch) {
        try {
          const state = await p.spec.load(tx);
          const events = p.spec.decide(state);
          envelopes.push(...envelopesOf(ctx, o.context, p.meta, events));
          decided.push({ p, state, events });
        } catch (err) {
          if (!(err instanceof AppError)) throw err;
          settled.push(() => p.reject(err));
        }
      }
      if (envelopes.length) recorded = await applyAndRecord(o, tx, tenantId, envelopes);
      const writes = new BatchedWrites<DB>();
      for (const { p, state, events } of decided) {
        const result = await p.spec.answer(tx, state, events, writes);
        settled.push(() => p.resolve(result));
      }
      await writes.flush(tx);
    };
    await ctx.db.transaction().execute(run);
    // The next batch need not wait for this one's publishing; its callers do (see afterCommit).
    void afterCommit(ctx, envelopes, recorded).then(() => {
      for (const settle of settled) settle();
    });
  }
}
