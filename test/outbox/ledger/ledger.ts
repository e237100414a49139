import { sql, type Kysely } from "kysely";
import { z } from "zod";
import { AppError } from "@mam/contracts/errors.ts";
import { BaseEnv, LOCAL_DEFAULTS, parseEnv } from "@mam/runtime/config.ts";
import { createLogger, type Logger } from "@mam/runtime/logger.ts";
import { commandExecutor, type EventDraft } from "@mam/service-kit/commands.ts";
import { applyOnceMany, type Sequenced } from "@mam/service-kit/event-sourcing.ts";
import { ownEventsProjection } from "@mam/service-kit/projection.ts";
import type { Publish } from "@mam/service-kit/relay.ts";
import { ServiceHost, type BaseContext } from "@mam/service-kit/service.ts";

/**
 * A service of the tests' own, declared on the kit like identity and the mailbox: a
 * ledger whose transfer is one command with two events (Debited, then Credited). Its read
 * model refuses a credit to the account "refused", so a command can fail between its two
 * events; the outbox tests interrupt it at every other point too.
 */
export const LEDGER_CONTEXT = "ledger";
export const LEDGER_PROJECTION = "ledger-read-model";
export const TRANSFER_SUBJECT = "svc.ledger.transfer";

const Moved = z.object({ transferId: z.string(), account: z.string(), amount: z.number().int() });
const base = {
  id: z.string().uuid(),
  context: z.literal(LEDGER_CONTEXT),
  tenantId: z.string().uuid(),
  workspaceId: z.string().uuid(),
  aggregateId: z.string(),
  aggregateVersion: z.number(),
  occurredAt: z.string(),
  causationId: z.string().nullable(),
  correlationId: z.string(),
  actor: z.object({ type: z.string(), id: z.string() }),
};
export const LedgerEnvelope = z.discriminatedUnion("type", [
  z.object({ ...base, type: z.literal("Debited"), schemaVersion: z.literal(1), data: Moved }),
  z.object({ ...base, type: z.literal("Credited"), schemaVersion: z.literal(1), data: Moved }),
]);
export type LedgerEnvelope = z.infer<typeof LedgerEnvelope>;
type LedgerEvent = Pick<LedgerEnvelope, "type" | "schemaVersion" | "data">;

interface LedgerDb {
  balances: { workspace_id: string; account: string; balance: number };
}

const migrations = {
  "0001-ledger": {
    async up(db: Kysely<any>) {
      await sql`create table applied_events (workspace_id uuid not null, event_id uuid not null, stream_seq bigint not null, primary key (workspace_id, event_id))`.execute(
        db,
      );
      await sql`create table projection_checkpoint (projection text not null, tenant_key text not null, stream_seq bigint not null, updated_at timestamptz not null, primary key (projection, tenant_key))`.execute(
        db,
      );
      await sql`create table balances (workspace_id uuid not null, account text not null check (account <> 'refused'), balance int not null, primary key (workspace_id, account))`.execute(
        db,
      );
    },
  },
};

async function evolve(tx: Kysely<LedgerDb>, e: LedgerEnvelope): Promise<void> {
  const by = e.type === "Debited" ? -e.data.amount : e.data.amount;
  await tx
    .insertInto("balances")
    .values({ workspace_id: e.workspaceId, account: e.data.account, balance: by })
    .onConflict((oc) => oc.columns(["workspace_id", "account"]).doUpdateSet({ balance: sql`balances.balance + ${by}` }))
    .execute();
}

const applyEvents = (tx: Kysely<LedgerDb>, events: Sequenced<LedgerEnvelope>[]) =>
  applyOnceMany(tx, LEDGER_PROJECTION, events, async (fresh) => {
    for (const { e } of fresh) await evolve(tx, e);
  });

const execute = commandExecutor<LedgerDb, LedgerEvent>({
  context: LEDGER_CONTEXT,
  projection: LEDGER_PROJECTION,
  apply: (tx, events) => applyEvents(tx, events as unknown as Sequenced<LedgerEnvelope>[]),
});

export const Transfer = z.object({
  tenantId: z.string().uuid(),
  workspaceId: z.string().uuid(),
  transferId: z.string().min(1),
  from: z.string().min(1),
  to: z.string().min(1),
  amount: z.number().int().positive(),
});
export type Transfer = z.infer<typeof Transfer>;

/** Pure: a transfer is a debit then a credit; nothing is moved out of an account it would overdraw (but "bank"). */
export function decideTransfer(t: Transfer, state: { fromBalance: number }): EventDraft<LedgerEvent>[] {
  if (t.from !== "bank" && state.fromBalance < t.amount) throw new AppError("CONFLICT", `${t.from} holds ${state.fromBalance}`);
  const at = (type: "Debited" | "Credited", account: string, version: number): EventDraft<LedgerEvent> => ({
    event: { type, schemaVersion: 1, data: { transferId: t.transferId, account, amount: t.amount } },
    tenantId: t.tenantId,
    workspaceId: t.workspaceId,
    aggregateId: t.transferId,
    aggregateVersion: version,
  });
  return [at("Debited", t.from, 1), at("Credited", t.to, 2)];
}

export type LedgerContext = BaseContext<LedgerDb>;

export function transfer(ctx: LedgerContext, t: Transfer): Promise<Record<string, number>> {
  const meta = { actor: { type: "system" as const, id: "ledger-test" }, requestId: t.transferId };
  const balanceOf = async (tx: Kysely<LedgerDb>, account: string) =>
    (await tx.selectFrom("balances").select("balance").where("workspace_id", "=", t.workspaceId).where("account", "=", account).executeTakeFirst())?.balance ??
    0;
  return execute(ctx, t.tenantId, meta, {
    load: async (tx) => ({ fromBalance: await balanceOf(tx, t.from) }),
    decide: (state) => decideTransfer(t, state),
    answer: async (tx) => ({ [t.from]: await balanceOf(tx, t.from), [t.to]: await balanceOf(tx, t.to) }),
  });
}

export const LedgerEnv = BaseEnv.extend({ DATABASE_URL: z.string().default(LOCAL_DEFAULTS.DATABASE_URL), DB_SCHEMA: z.string().default("ledger") });
export type LedgerConfig = z.infer<typeof LedgerEnv>;
export const ledgerConfig = (env: Record<string, string | undefined>) => parseEnv(LedgerEnv, env);

/** The whole service: a config, one projection, one handler. */
export function ledgerService(cfg: LedgerConfig, o: { logger?: Logger; publish?: Publish; sweepMs?: number } = {}) {
  return new ServiceHost<LedgerDb, LedgerContext>({
    name: "ledger",
    env: { ...cfg, HEALTH_PORT: cfg.HEALTH_PORT ?? 0 },
    logger: o.logger ?? createLogger("ledger", cfg.LOG_LEVEL),
    database: { url: cfg.DATABASE_URL, schema: cfg.DB_SCHEMA, migrations },
    events: { context: LEDGER_CONTEXT, projection: LEDGER_PROJECTION, relay: { publish: o.publish, sweepMs: o.sweepMs ?? 100 } },
    context: (b) => b,
    projections: (ctx) => [
      ownEventsProjection({
        name: LEDGER_PROJECTION,
        context: LEDGER_CONTEXT,
        db: ctx.db,
        parse: (j) => LedgerEnvelope.parse(j),
        apply: (tx, e, seq) => applyEvents(tx, [{ e, seq }]),
      }),
    ],
    handlers: (server, ctx) => server.handlePublic(TRANSFER_SUBJECT, async (body) => ({ status: 200, body: await transfer(ctx, Transfer.parse(body)) })),
  });
}
