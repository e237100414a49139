import { sql, type Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "@mam/db/database.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { isolate } from "@mam/testing/isolation.ts";

/**
 * Named statements (packages/db/src/prepared.ts) on the real Postgres, each pool of one
 * connection so what its session holds can be read back: a write is prepared the second time
 * its text comes and reused after, reads never are, only so many texts are named, none with
 * `DB_PREPARED_STATEMENTS=0`, and a statement gone stale under a migration is sent again
 * unnamed on a fresh connection.
 */
describe("named statements", () => {
  const iso = isolate();
  const logger = createLogger("test", "silent");
  const opened: Database<any>[] = [];
  let table = 0;

  const open = async (preparedStatements: number) => {
    const d = await openDatabase<any>({ url: iso.urls.DATABASE_URL, schema: iso.schema("prepared"), logger, poolSize: 1, preparedStatements, migrations: {} });
    opened.push(d);
    return d.db;
  };
  /** A table of its own for a test. */
  const tableFor = async (db: Kysely<any>) => {
    const name = `things_${++table}`;
    await sql`create table ${sql.table(name)} (id int primary key, name text not null)`.execute(db);
    return name;
  };
  /** The statements the (one) connection's session holds prepared, by text. */
  const prepared = async (db: Kysely<any>) =>
    (await sql<{ statement: string }>`select statement from pg_prepared_statements where not from_sql`.execute(db)).rows.map((r) => r.statement);
  const pid = async (db: Kysely<any>) => (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(db)).rows[0]!.pid;

  beforeAll(async () => {
    await open(0);
  });
  afterAll(async () => {
    for (const d of opened) await d.close();
    await iso.cleanup();
  });

  it("prepares a write the second time its text comes, then runs it by name; never a read", async () => {
    const db = await open(10);
    const things = await tableFor(db);
    const rename = (id: number, name: string) => db.updateTable(things).set({ name }).where("id", "=", id).execute();
    await db.insertInto(things).values({ id: 1, name: "one" }).execute();
    await rename(1, "first");
    expect((await prepared(db)).filter((t) => t.startsWith(`update "${things}"`))).toEqual([]);
    await rename(1, "second");
    await rename(1, "third");
    expect((await prepared(db)).filter((t) => t.startsWith(`update "${things}"`))).toHaveLength(1);
    // Reads, by key or by page, however often, are planned for their values each time.
    for (let i = 0; i < 3; i++) {
      expect(await db.selectFrom(things).select("name").where("id", "=", 1).execute()).toEqual([{ name: "third" }]);
      expect(await db.selectFrom(things).select("id").where("id", ">", 0).orderBy("id").limit(5).execute()).toEqual([{ id: 1 }]);
    }
    expect((await prepared(db)).filter((t) => t.includes(`from "${things}"`))).toEqual([]);
  });

  it("names no more texts than it is allowed per connection; later ones run unnamed, and correctly", async () => {
    const db = await open(3);
    const things = await tableFor(db);
    await db.insertInto(things).values({ id: 1, name: "x" }).execute();
    for (let i = 0; i < 6; i++)
      for (let twice = 0; twice < 2; twice++) {
        const r = await sql`update ${sql.table(things)} set name = ${`n${i}`} where id = ${1} ${sql.raw(`-- text ${i}`)}`.execute(db);
        expect(Number(r.numAffectedRows)).toBe(1);
      }
    const texts = (await prepared(db)).filter((t) => t.includes("-- text")).sort();
    expect(texts).toEqual([0, 1, 2].map((i) => expect.stringContaining(`-- text ${i}`)));
  });

  it("prepares nothing when turned off", async () => {
    const db = await open(0);
    const things = await tableFor(db);
    for (let i = 0; i < 3; i++) await db.insertInto(things).values({ id: i, name: "x" }).execute();
    expect(await prepared(db)).toEqual([]);
  });

  it("a write whose returned columns changed under it (a migration) is sent again unnamed, on a connection replaced after", async () => {
    const db = await open(10);
    const things = await tableFor(db);
    const add = (id: number) => db.insertInto(things).values({ id, name: "x" }).returningAll().execute();
    await add(1);
    await add(2);
    expect((await prepared(db)).filter((t) => t.startsWith(`insert into "${things}"`))).toHaveLength(1);
    const before = await pid(db);
    // Another replica's migration adds a column: the prepared `returning *` now has another shape.
    await sql`alter table ${sql.table(things)} add column note text`.execute(await open(0));
    expect(await add(3)).toEqual([{ id: 3, name: "x", note: null }]);
    // The connection was closed as it was given back; a fresh one serves.
    expect(await pid(db)).not.toBe(before);
    expect(await add(4)).toEqual([{ id: 4, name: "x", note: null }]);
  });

  it("one stale statement retires every connection of the pool opened before it, each at its next checkout", async () => {
    const d = await openDatabase<any>({
      url: iso.urls.DATABASE_URL,
      schema: iso.schema("prepared"),
      logger,
      poolSize: 2,
      preparedStatements: 10,
      migrations: {},
    });
    opened.push(d);
    const things = await tableFor(d.db);
    let id = 0;
    const add = (db: Kysely<any>) => db.insertInto(things).values({ id: ++id, name: "x" }).returningAll().execute();
    /** Two transactions at once, so each has a connection of its own: their server processes. */
    const onBoth = () =>
      Promise.all(
        [0, 1].map(() =>
          d.db.transaction().execute(async (tx) => {
            await add(tx);
            await add(tx);
            await sql`select pg_sleep(0.2)`.execute(tx);
            return pid(tx);
          }),
        ),
      );
    const first = await onBoth();
    expect(new Set(first).size).toBe(2);
    await sql`alter table ${sql.table(things)} add column note text`.execute(await open(0));
    // One connection meets the change (and sends its write again unnamed)...
    expect(await add(d.db)).toEqual([{ id, name: "x", note: null }]);
    // ...and neither of the two serves again: the other would fail its next transaction.
    const after = await onBoth();
    expect(after.filter((p) => first.includes(p))).toEqual([]);
  });

  it("inside a transaction the stale write fails that transaction, and the next one succeeds", async () => {
    const db = await open(10);
    const things = await tableFor(db);
    const add = (tx: Kysely<any>, id: number) => tx.insertInto(things).values({ id, name: "x" }).returningAll().execute();
    await db.transaction().execute((tx) => add(tx, 1));
    await db.transaction().execute((tx) => add(tx, 2));
    await sql`alter table ${sql.table(things)} add column note text`.execute(await open(0));
    await expect(db.transaction().execute((tx) => add(tx, 3))).rejects.toMatchObject({ code: "0A000" });
    expect(await db.transaction().execute((tx) => add(tx, 3))).toEqual([{ id: 3, name: "x", note: null }]);
  });
});
