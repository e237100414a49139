import { sql, type Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeBus, connectBus, type Bus } from "@mam/bus/connection.ts";
import { ensureEventsStream } from "@mam/bus/streams.ts";
import { AppError } from "@mam/contracts/errors.ts";
import { openDatabase, type Database } from "@mam/db/database.ts";
import { systemClock, uuidv7 } from "@mam/runtime/ids.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { isolate } from "@mam/testing/isolation.ts";
import type { CommandContext } from "./commands.ts";
import { createProjectionBookkeeping } from "./bookkeeping-tables.ts";
import { applyOnceMany, type Sequenced } from "./event-sourcing.ts";
import { GroupCommit } from "./group-commit.ts";
import { kitMigrations } from "./migrations/index.ts";
import { OutboxRelay } from "./relay.ts";

type Named = { type: "Named"; schemaVersion: 1; data: { id: string; name: string } };

/** A read model of one table, whose CHECK refuses the name "bad" as a stand-in for any row the database refuses. */
const migrations = {
  "0001": {
    async up(db: Kysely<any>) {
      await createProjectionBookkeeping(db);
      await sql`create table names (id text primary key, name text not null check (name <> 'bad'))`.execute(db);
    },
  },
  ...kitMigrations,
};

describe("GroupCommit", () => {
  const iso = isolate();
  const logger = createLogger("test", "silent");
  let bus: Bus;
  let database: Database<any>;
  let stream: string;
  let ctx: CommandContext<any>;
  let relay: OutboxRelay;
  const tenant = "7b0f6c5e-3d1a-4c2b-9e8f-0a1b2c3d4e5f";

  beforeAll(async () => {
    bus = await connectBus({ url: iso.urls.NATS_URL, prefix: iso.prefix, name: "group-commit-test", logger });
    stream = await ensureEventsStream(bus);
    database = await openDatabase({ url: iso.urls.DATABASE_URL, schema: iso.schema("groupcommit"), logger, migrations });
    relay = new OutboxRelay({ db: database.db, bus, logger, context: "test" });
    relay.start();
    ctx = { db: database.db, bus, logger, clock: systemClock, newId: () => uuidv7(), relay };
  });
  afterAll(async () => {
    await relay.stop();
    await database.close();
    await closeBus(bus);
    await iso.cleanup();
  });

  const batcher = () =>
    new GroupCommit<any, Named>(ctx, {
      context: "test",
      projection: "names",
      apply: (tx, events) =>
        applyOnceMany(tx, "names", events as Sequenced<any>[], async (fresh) => {
          for (const { e } of fresh) await tx.insertInto("names").values({ id: e.data.id, name: e.data.name }).execute();
        }),
    });

  const named = (name: string) => ({
    load: async () => uuidv7(),
    decide: (id: string) => {
      if (name === "refused") throw new AppError("CONFLICT", "refused by its decision");
      return [
        {
          event: { type: "Named" as const, schemaVersion: 1 as const, data: { id, name } },
          tenantId: tenant,
          workspaceId: null,
          aggregateId: id,
          aggregateVersion: 1,
        },
      ];
    },
    answer: async () => name,
  });

  it("a refusal and a row the database refuses fail alone; the others commit; the stream holds each event once", async () => {
    const g = batcher();
    const meta = { actor: { type: "system" as const, id: "test" }, requestId: "r" };
    const names = ["a", "b", "refused", "c", "bad", "d", "e"];
    const outcomes = await Promise.allSettled(names.map((n) => g.run(tenant, meta, named(n))));
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled", "rejected", "fulfilled", "fulfilled"]);
    const stored = (await database.db.selectFrom("names").select("name").orderBy("name").execute()).map((r: { name: string }) => r.name);
    expect(stored).toEqual(["a", "b", "c", "d", "e"]);
    // No event of the failed ones, none twice.
    const info = await bus.jsm.streams.info(stream);
    expect(info.state.messages).toBe(5);
  });
});
