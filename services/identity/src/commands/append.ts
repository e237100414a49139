import { sql, type Kysely } from "kysely";
import { appendEvent } from "@mam/bus/events.ts";
import { AppError } from "@mam/contracts/errors.ts";
import { IDENTITY_CONTEXT, type IdentityEnvelope, type IdentityEvent } from "@mam/contracts/identity-events.ts";
import type { Actor } from "@mam/contracts/envelope.ts";
import type { IdentityDb } from "../db/schema.ts";
import { applyIdentityEvent } from "../projections/identity-read-model.ts";
import type { IdentityContext } from "../context.ts";

export interface EventDraft<E extends IdentityEvent = IdentityEvent> {
  event: E;
  tenantId: string | null;
  workspaceId: string | null;
  aggregateId: string;
  aggregateVersion: number;
}

export interface CommandMeta {
  actor: Actor;
  requestId: string;
}

/**
 * The command path: serialise decisions per tenant (an advisory lock held by the
 * transaction), decide against the read model, append each event durably, then apply it
 * to the read model in the same transaction, so the reply can be read back at once.
 * The durable consumer applies the same events again idempotently; it is what rebuilds
 * the read model and what heals a crash between the append and the commit.
 */
export async function execute<T>(
  ctx: IdentityContext,
  lockKey: string,
  meta: CommandMeta,
  decide: (tx: Kysely<IdentityDb>) => Promise<EventDraft[]>,
  read: (tx: Kysely<IdentityDb>) => Promise<T>,
): Promise<T> {
  return ctx.db.transaction().execute(async (tx) => {
    await sql`select pg_advisory_xact_lock(hashtextextended(${`identity:${lockKey}`}, 0))`.execute(tx);
    const drafts = await decide(tx);
    let causationId: string | null = null;
    for (const d of drafts) {
      const envelope = {
        id: ctx.newId(),
        type: d.event.type,
        schemaVersion: d.event.schemaVersion,
        context: IDENTITY_CONTEXT,
        tenantId: d.tenantId,
        workspaceId: d.workspaceId,
        aggregateId: d.aggregateId,
        aggregateVersion: d.aggregateVersion,
        occurredAt: ctx.clock().toISOString(),
        causationId,
        correlationId: meta.requestId,
        actor: meta.actor,
        data: d.event.data,
      } as IdentityEnvelope;
      const ack = await appendEvent(ctx.bus, envelope).catch((err: unknown) => {
        ctx.logger.error({ err, type: envelope.type }, "could not append event");
        throw new AppError("UNAVAILABLE", "The event store is unavailable; retry shortly");
      });
      await applyIdentityEvent(tx, envelope, ack.seq);
      causationId = envelope.id;
    }
    return read(tx);
  });
}
