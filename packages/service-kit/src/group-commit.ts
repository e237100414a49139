import type { Kysely } from "kysely";
import { AppError } from "@mam/contracts/errors.ts";
import { applyAndAppend, envelopesOf, lockTenant, type CommandContext, type CommandMeta, type CommandSpec, type Envelope, type EventDraft, type ExecutorOptions } from "./event-sourcing.ts";
import { TenantBatches } from "./tenant-batches.ts";

/** A command for group commit: its decision and its answer. */
export type BatchedDecision<DB, E extends { type: string; schemaVersion: number; data: unknown }, T> = (tx: Kysely<DB>) => Promise<{ events: EventDraft<E>[]; result: T }>;

interface Pending<DB, E extends { type: string; schemaVersion: number; data: unknown }> {
  meta: CommandMeta;
  spec: CommandSpec<DB, E, unknown, unknown>;
  resolve: (v: unknown) => void;
  reject: (err: unknown) => void;
}

/** A batch that failed after its events were (perhaps) appended: not to be decided again. */
class AppendedThenFailed extends Error {
  constructor(override readonly cause: unknown) {
    super("failed after appending events", { cause });
  }
}

/**
 * Group commit for commands of one kind whose decisions do not read each other's events
 * (sends, say): commands of a tenant that arrive while a batch of that tenant is being
 * committed wait and go together, with one lock, one transaction, one round of appends and
 * one application of all their events. Each decision still runs alone, in arrival order,
 * and sees what the ones before it wrote in the transaction. A decision refuses by throwing
 * an AppError before it writes anything: that command alone is refused. A failure before
 * appending fails the batch, and its commands are tried again one by one, so one cannot
 * sink others; once appending began, the events may be in the stream and deciding again
 * would make a second set, so the batch fails as a whole.
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
      retryAlone: (err) => !(err instanceof AppendedThenFailed),
      fail: (p, err) => p.reject(err instanceof AppendedThenFailed ? err.cause : err),
    });
  }

  run<S, T>(tenantId: string, meta: CommandMeta, spec: CommandSpec<DB, E, S, T> | BatchedDecision<DB, E, T>): Promise<T> {
    // TRANSITIONAL: the old form (one function deciding and answering) until sends are load/decide/answer.
    const s: CommandSpec<DB, E, any, T> =
      typeof spec === "function"
        ? { load: (tx) => spec(tx), decide: (d: { events: EventDraft<E>[] }) => d.events, answer: async (_tx, d: { result: T }) => d.result }
        : spec;
    return new Promise<T>((resolve, reject) =>
      this.batches.add(tenantId, { meta, spec: s as CommandSpec<DB, E, unknown, unknown>, resolve: resolve as (v: unknown) => void, reject }),
    );
  }

  private async commit(tenantId: string, batch: Pending<DB, E>[]): Promise<void> {
    const { ctx, o } = this;
    const settled: (() => void)[] = [];
    const envelopes: Envelope<E>[] = [];
    let appending = false;
    const run = async (tx: Kysely<DB>) => {
      await lockTenant(tx, o.context, tenantId);
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
      if (envelopes.length) await applyAndAppend(ctx, o, tx, envelopes, () => (appending = true));
      for (const { p, state, events } of decided) {
        const result = await p.spec.answer(tx, state, events);
        settled.push(() => p.resolve(result));
      }
    };
    try {
      await ctx.db.transaction().execute(run);
    } catch (err) {
      throw appending ? new AppendedThenFailed(err) : err;
    }
    ctx.recent?.add(envelopes.map((e) => e.id));
    for (const settle of settled) settle();
  }
}
