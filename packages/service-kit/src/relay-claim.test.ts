import { randomUUID } from "node:crypto";
import { sql, type Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "@mam/db/database.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { kitMigrations } from "./migrations/index.ts";
import { claimPending, markPublished } from "./outbox.ts";

/** claimPending: a relay pass's lock and its rows in one round trip. */
describe("claimPending", () => {
  const iso = isolate();
  let database: Database<any>;
  let db: Kysely<any>;
  const lock = (tenant: string) => `outbox:test:${tenant}`;

  beforeAll(async () => {
    database = await openDatabase({
      url: iso.urls.DATABASE_URL,
      schema: iso.schema("relayclaim"),
      logger: createLogger("test", "silent"),
      migrations: kitMigrations,
    });
    db = database.db;
  });
  afterAll(async () => {
    await database.close();
    await iso.cleanup();
  });

  const write = async (tenant: string, n: number) => {
    const rows = Array.from({ length: n }, () => ({ tenant_key: tenant, event_id: randomUUID(), subject: `evt.test.${tenant}._.Happened`, envelope: "{}" }));
    const out = await db.insertInto("outbox").values(rows).returning(["seq", "event_id"]).execute();
    return out as { seq: number; event_id: string }[];
  };

  it("gives the tenant's unpublished rows oldest first, up to the limit, and none of another tenant's or published ones", async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const mine = await write(a, 4);
    await write(b, 2);
    await db.transaction().execute(async (tx) => markPublished(tx, [{ seq: mine[0]!.seq, streamSeq: 1 }]));
    const got = await db.transaction().execute((tx) => claimPending(tx, lock(a), a, 2));
    expect(got).toEqual(mine.slice(1, 3).map((r) => ({ seq: r.seq, tenant_key: a, event_id: r.event_id, subject: `evt.test.${a}._.Happened` })));
    expect(await db.transaction().execute((tx) => claimPending(tx, lock(randomUUID()), randomUUID(), 10))).toEqual([]);
  });

  it("answers busy while another pass holds the tenant's lock, and the rows once it is let go", async () => {
    const t = randomUUID();
    const rows = await write(t, 1);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let held!: () => void;
    const isHeld = new Promise<void>((r) => (held = r));
    const other = db.transaction().execute(async (tx) => {
      await sql`select pg_advisory_xact_lock(hashtextextended(${lock(t)}, 0))`.execute(tx);
      held();
      await released;
    });
    await isHeld;
    expect(await db.transaction().execute((tx) => claimPending(tx, lock(t), t, 10))).toBe("busy");
    release();
    await other;
    expect((await db.transaction().execute((tx) => claimPending(tx, lock(t), t, 10))) as unknown[]).toHaveLength(rows.length);
  });

  it("bounds its transaction: an idle pass cannot hold the tenant for ever", async () => {
    const settings = await db.transaction().execute(async (tx) => {
      await claimPending(tx, lock(randomUUID()), randomUUID(), 1);
      return (
        await sql<{
          idle: string;
          statement: string;
        }>`select current_setting('idle_in_transaction_session_timeout') as idle, current_setting('statement_timeout') as statement`.execute(tx)
      ).rows[0];
    });
    expect(settings).toEqual({ idle: "30s", statement: "30s" });
  });
});
