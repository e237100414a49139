import { sql, type Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "@mam/db/database.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { isolate } from "@mam/testing/isolation.ts";

/**
 * Named statements (packages/db/src/prepared.ts) on the real Postgres, each pool of one
 * connection so what its session holds can be read back: a text is prepared once and reused,
 * only so many texts are named, none with `DB_PREPARED_STATEMENTS=0`, and a connection whose
 * statements went stale under a migration is replaced.
 */
describe("named statements", () => {
  const iso = isolate();
  const logger = createLogger("test", "silent");
  const opened: Database<any>[] = [];

  const open = async (preparedStatements: number) => {
    const d = await openDatabase<any>({ url: iso.urls.DATABASE_URL, schema: iso.schema("prepared"), logger, poolSize: 1, preparedStatements, migrations: {} });
    opened.push(d);
    return d.db;
  };
  /** The statements the (one) connection's session holds prepared, by text. */
  const prepared = async (db: Kysely<any>) =>
    (await sql<{ statement: string }>`select statement from pg_prepared_statements where not from_sql`.execute(db)).rows.map((r) => r.statement);
  const pid = async (db: Kysely<any>) => (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(db)).rows[0]!.pid;

  beforeAll(async () => {
    const db = await open(0);
    await sql`create table if not exists things (id int primary key, name text not null)`.execute(db);
  });
  afterAll(async () => {
    for (const d of opened) await d.close();
    await iso.cleanup();
  });

  it("prepares a parameterised text once on a connection and runs it by name after", async () => {
    const db = await open(10);
    const byId = (id: number) => db.selectFrom("things").select("name").where("id", "=", id).execute();
    await db.insertInto("things").values({ id: 1, name: "one" }).execute();
    expect(await byId(1)).toEqual([{ name: "one" }]);
    expect(await byId(2)).toEqual([]);
    const texts = await prepared(db);
    // The lookup is prepared once though it ran twice; the insert is prepared too.
    expect(texts.filter((t) => t.includes('select "name" from "things"'))).toHaveLength(1);
    expect(texts.some((t) => t.startsWith('insert into "things"'))).toBe(true);
    // Statements without parameters (a transaction's begin and commit, this one) are not prepared.
    expect(texts.some((t) => t.includes("pg_prepared_statements"))).toBe(false);
  });

  it("never names a page: its plan is made for its values each time", async () => {
    const db = await open(10);
    const page = await db.selectFrom("things").select("id").where("id", ">", 0).orderBy("id").limit(5).execute();
    expect(page).toEqual([{ id: 1 }]);
    expect((await prepared(db)).filter((t) => t.includes('from "things"'))).toEqual([]);
  });

  it("names no more texts than it is allowed per connection; later ones run unnamed, and correctly", async () => {
    const db = await open(6);
    // Opening (the migrator's reads) named some already.
    const room = 6 - (await prepared(db)).length;
    expect(room).toBeGreaterThan(0);
    for (let i = 0; i < room + 3; i++) {
      const rows = await sql<{ n: number }>`select ${i}::int + ${i}::int as n ${sql.raw(`-- text ${i}`)}`.execute(db);
      expect(rows.rows[0]!.n).toBe(2 * i);
    }
    const texts = (await prepared(db)).filter((t) => t.includes("-- text")).sort();
    expect(texts).toEqual(Array.from({ length: room }, (_, i) => expect.stringContaining(`-- text ${i}`)));
  });

  it("prepares nothing when turned off", async () => {
    const db = await open(0);
    await db.selectFrom("things").select("name").where("id", "=", 1).execute();
    expect(await prepared(db)).toEqual([]);
  });

  it("replaces a connection whose statement no longer fits its table: it fails once, then runs again", async () => {
    const db = await open(10);
    const everything = () => db.selectFrom("things").selectAll().where("id", "=", 1).execute();
    expect(await everything()).toEqual([{ id: 1, name: "one" }]);
    const before = await pid(db);
    // Another replica's migration adds a column: the prepared `select *` now has another shape.
    const other = await open(0);
    await sql`alter table things add column note text`.execute(other);
    await expect(everything()).rejects.toMatchObject({ code: "0A000" });
    // The connection was closed as it was given back; a fresh one prepares the text anew.
    expect(await everything()).toEqual([{ id: 1, name: "one", note: null }]);
    expect(await pid(db)).not.toBe(before);
  });
});
