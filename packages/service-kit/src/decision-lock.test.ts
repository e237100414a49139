import { sql, type Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppError } from "@mam/contracts/errors.ts";
import { openDatabase, type Database } from "@mam/db/database.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { createProjectionBookkeeping } from "./bookkeeping-tables.ts";
import { kitMigrations } from "./migrations/index.ts";
import { lockForDecision, rebuildLock, recordName } from "./rebuild-guard.ts";

const migrations = {
  "0001": { up: (db: Kysely<any>) => createProjectionBookkeeping(db) },
  ...kitMigrations,
};

/**
 * lockForDecision takes the tenant's lock and the rebuild's shared lock, and reads the rebuild
 * record, in one round trip. What it must never do: decide on a read model that a rebuild
 * emptied while the command waited for the shared lock.
 */
describe("lockForDecision", () => {
  const iso = isolate();
  const logger = createLogger("test", "silent");
  let database: Database<any>;
  let db: Kysely<any>;
  const projection = "names";
  const tenant = "3c1f0e2d-5b4a-4c3d-8e9f-a0b1c2d3e4f5";

  beforeAll(async () => {
    database = await openDatabase({ url: iso.urls.DATABASE_URL, schema: iso.schema("decisionlock"), logger, migrations });
    db = database.db;
  });
  afterAll(async () => {
    await database.close();
    await iso.cleanup();
  });

  /** Until `n` statements of this file's pool (named after its schema) wait for a lock. */
  const waiting = (n: number) =>
    waitFor(
      async () => {
        const r = await sql<{ n: number }>`
          select count(*)::int as n from pg_stat_activity
          where application_name = current_schema() and wait_event_type = 'Lock' and query like '%lock_for_decision%'`.execute(db);
        return r.rows[0]!.n === n;
      },
      { timeoutMs: 10_000, what: `${n} decisions waiting for a lock` },
    );

  /** A transaction holding `lock` until released; `during` runs in it once the lock is held. */
  async function holding(lock: ReturnType<typeof sql>, during: (tx: Kysely<any>) => Promise<void> = async () => {}) {
    let held!: () => void;
    const isHeld = new Promise<void>((r) => (held = r));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const done = db.transaction().execute(async (tx) => {
      await sql`select pg_advisory_xact_lock(${lock})`.execute(tx);
      await during(tx);
      held();
      await released;
    });
    await isHeld;
    return async () => {
      release();
      await done;
    };
  }

  const decide = () => db.transaction().execute((tx) => lockForDecision(tx, "test", tenant, projection));

  it("refuses while a rebuild is recorded, and not once it is done", async () => {
    await db
      .insertInto("projection_checkpoint")
      .values({ projection: recordName(projection), tenant_key: "", stream_seq: 1, updated_at: new Date() })
      .execute();
    await expect(decide()).rejects.toSatisfy((e) => e instanceof AppError && e.code === "UNAVAILABLE");
    await db.deleteFrom("projection_checkpoint").where("projection", "=", recordName(projection)).execute();
    await expect(decide()).resolves.toBeUndefined();
  });

  it("sees a rebuild that began, emptied and committed while the command waited for the shared lock", async () => {
    // The rebuild holds its lock alone and records itself, uncommitted; the command waits.
    const commitRebuild = await holding(rebuildLock(projection), async (tx) => {
      await tx
        .insertInto("projection_checkpoint")
        .values({ projection: recordName(projection), tenant_key: "", stream_seq: 1, updated_at: new Date() })
        .execute();
    });
    const decision = decide().then(
      () => "decided",
      (e: unknown) => (e instanceof AppError ? e.code : String(e)),
    );
    await waiting(1);
    await commitRebuild();
    expect(await decision).toBe("UNAVAILABLE");
    await db.deleteFrom("projection_checkpoint").where("projection", "=", recordName(projection)).execute();
  });

  it("takes the tenant's lock: a second command of the tenant waits for the first's transaction to end", async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const first = db.transaction().execute(async (tx) => {
      await lockForDecision(tx, "test", tenant, projection);
      locked();
      await released;
    });
    await isLocked;
    const order: string[] = [];
    const second = decide().then(() => order.push("second"));
    await waiting(1);
    order.push("first ends");
    release();
    await first;
    await second;
    expect(order).toEqual(["first ends", "second"]);
  });
});
