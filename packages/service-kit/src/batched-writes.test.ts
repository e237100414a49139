import { sql, type Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeBus, connectBus, type Bus } from "@mam/bus/connection.ts";
import { ensureEventsStream } from "@mam/bus/streams.ts";
import { openDatabase, type Database } from "@mam/db/database.ts";
import { systemClock, uuidv7 } from "@mam/runtime/ids.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { BatchedWrites, type RowsWriter } from "./batched-writes.ts";
import { commandExecutor, type CommandContext, type CommandSpec, type ExecutorOptions } from "./commands.ts";
import { createProjectionBookkeeping } from "./bookkeeping-tables.ts";
import { applyOnceMany, type Sequenced } from "./event-sourcing.ts";
import { GroupCommit } from "./group-commit.ts";
import { kitMigrations } from "./migrations/index.ts";
import { OutboxRelay } from "./relay.ts";

type Named = { type: "Named"; schemaVersion: 1; data: { id: string; name: string } };

/**
 * A read model of one table (`names`, from the events) and a table written beside the events
 * by the answers (`keys`, as a send's idempotency records are), whose CHECK refuses the key
 * "bad" as a stand-in for any row the database refuses.
 */
const migrations = {
  "0001": {
    async up(db: Kysely<any>) {
      await createProjectionBookkeeping(db);
      await sql`create table names (id text primary key, name text not null)`.execute(db);
      await sql`create table keys (id text primary key, key text not null check (key <> 'bad'))`.execute(db);
      await sql`create table notes (id text primary key, note text not null)`.execute(db);
    },
  },
  ...kitMigrations,
};

type KeyRow = { id: string; key: string };

/**
 * BatchedWrites: the rows the answers of one transaction add are written once they all have
 * answered, one writer call per kind of row, in the transaction (so a writer's failure is
 * the transaction's). Driven through GroupCommit and commandExecutor on a real schema.
 */
describe("BatchedWrites", () => {
  const iso = isolate();
  const logger = createLogger("test", "silent");
  let bus: Bus;
  let database: Database<any>;
  let stream: string;
  let ctx: CommandContext<any>;
  let relay: OutboxRelay;
  const tenant = "3c1e0a52-8b7d-4f60-9a2e-5d4c3b2a1f0e";
  const meta = { actor: { type: "system" as const, id: "test" }, requestId: "r" };

  /** Each call of the writers: the rows given, and how many of those rows' names the writer's transaction sees, and the pool sees. */
  const calls: { writer: string; keys: string[]; namesInTransaction: number; namesCommitted: number }[] = [];
  const namesOf = async (db: Kysely<any>, ids: string[]) =>
    Number((await db.selectFrom("names").select(sql<number>`count(*)`.as("n")).where("id", "in", ids).executeTakeFirstOrThrow()).n);
  const writeKeys: RowsWriter<any, KeyRow> = async (tx, rows) => {
    const ids = rows.map((r) => r.id);
    calls.push({ writer: "keys", keys: rows.map((r) => r.key), namesInTransaction: await namesOf(tx, ids), namesCommitted: await namesOf(database.db, ids) });
    await tx.insertInto("keys").values(rows).execute();
  };
  const writeNotes: RowsWriter<any, { id: string; note: string }> = async (tx, rows) => {
    calls.push({ writer: "notes", keys: rows.map((r) => r.note), namesInTransaction: -1, namesCommitted: -1 });
    await tx.insertInto("notes").values(rows).execute();
  };

  beforeAll(async () => {
    bus = await connectBus({ url: iso.urls.NATS_URL, prefix: iso.prefix, name: "batched-writes-test", logger });
    stream = await ensureEventsStream(bus);
    database = await openDatabase({ url: iso.urls.DATABASE_URL, schema: iso.schema("batchedwrites"), logger, migrations });
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

  const options: ExecutorOptions<any, Named> = {
    context: "test",
    projection: "names",
    apply: (tx, events) =>
      applyOnceMany(tx, "names", events as Sequenced<any>[], async (fresh) => {
        for (const { e } of fresh) await tx.insertInto("names").values({ id: e.data.id, name: e.data.name }).execute();
      }),
  };

  /** A command naming a new id `name`, whose answer adds the row (id, key) to write, when given a key. */
  const keyed = (name: string, key: string | null, gate?: Promise<void>): CommandSpec<any, Named, string, string> => ({
    load: async () => {
      await gate;
      return uuidv7();
    },
    decide: (id) => [
      {
        event: { type: "Named", schemaVersion: 1, data: { id, name } },
        tenantId: tenant,
        workspaceId: null,
        aggregateId: id,
        aggregateVersion: 1,
      },
    ],
    answer: async (_tx, id, _events, writes) => {
      if (key !== null) writes.add(writeKeys, { id, key });
      return name;
    },
  });

  const names = async (of: string[]) =>
    (await database.db.selectFrom("names").select("name").where("name", "in", of).orderBy("name").execute()).map((r: { name: string }) => r.name);
  const keys = async (of: string[]) =>
    (await database.db.selectFrom("keys").select("key").where("key", "in", of).orderBy("key").execute()).map((r: { key: string }) => r.key);
  const eventsInStream = async () => (await bus.jsm.streams.info(stream)).state.messages;

  /**
   * Commands run through one GroupCommit as one batch: a first command holds its batch open (its
   * load waits) while the others queue behind it, so they go together in the next.
   */
  async function oneBatch(commands: [name: string, key: string | null][]) {
    const g = new GroupCommit<any, Named>(ctx, options);
    let open!: () => void;
    const gate = new Promise<void>((r) => {
      open = r;
    });
    const first = g.run(tenant, meta, keyed(`${commands[0]![0]}-first`, null, gate));
    const rest = commands.map(([name, key]) => g.run(tenant, meta, keyed(name, key)));
    open();
    await first;
    return Promise.allSettled(rest);
  }

  it("group commit: the rows of a batch's answers are written by one writer call with them all, in the batch's transaction", async () => {
    calls.length = 0;
    const before = await eventsInStream();
    const batch = ["g1", "g2", "g3", "g4", "g5"];
    const outcomes = await oneBatch(batch.map((n) => [n, `key-${n}`]));
    expect(outcomes.map((o) => (o.status === "fulfilled" ? o.value : o.reason))).toEqual(batch);
    // One call for the five (none for the first batch, whose answer added nothing), made before the commit:
    // the writer's transaction sees the batch's names, the pool none of them yet.
    expect(calls).toEqual([{ writer: "keys", keys: batch.map((n) => `key-${n}`), namesInTransaction: 5, namesCommitted: 0 }]);
    expect(await keys(batch.map((n) => `key-${n}`))).toEqual(batch.map((n) => `key-${n}`));
    expect(await names(batch)).toEqual(batch);
    expect((await eventsInStream()) - before).toBe(6);
  });

  it("group commit: a writer that fails fails the batch, which left nothing; each command is then tried alone", async () => {
    calls.length = 0;
    const before = await eventsInStream();
    const batch: [string, string][] = [
      ["h1", "key-h1"],
      ["h2", "key-h2"],
      ["h-bad", "bad"],
      ["h3", "key-h3"],
    ];
    const outcomes = await oneBatch(batch);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
    expect(String((outcomes[2] as PromiseRejectedResult).reason)).toMatch(/check constraint/);
    // The batch's one call failed (the database refused a row); then one call per command, each in its own transaction.
    expect(calls.map((c) => c.keys)).toEqual([["key-h1", "key-h2", "bad", "key-h3"], ["key-h1"], ["key-h2"], ["bad"], ["key-h3"]]);
    expect(calls.map((c) => c.namesInTransaction)).toEqual([4, 1, 1, 1, 1]);
    expect(calls.map((c) => c.namesCommitted)).toEqual([0, 0, 0, 0, 0]);
    // The refused command left neither its name nor its event; the others each once.
    expect(await names(batch.map(([n]) => n))).toEqual(["h1", "h2", "h3"]);
    expect(await keys(batch.map(([, k]) => k))).toEqual(["key-h1", "key-h2", "key-h3"]);
    expect((await eventsInStream()) - before).toBe(4);
  });

  it("commandExecutor: an answer's rows are written after it answered, one call per writer, in its transaction; a failing writer fails the command and leaves nothing", async () => {
    calls.length = 0;
    const execute = commandExecutor<any, Named>(options);
    const before = await eventsInStream();
    let answered = false;
    const spec = (name: string, rows: string[], notesFirst = false): CommandSpec<any, Named, string, string> => ({
      ...keyed(name, null),
      answer: async (_tx, id, _events, writes) => {
        rows.forEach((key, i) => {
          const note = { id: `${id}-${i}`, note: `note of ${key}` };
          if (notesFirst) writes.add(writeNotes, note);
          writes.add(writeKeys, { id: i ? `${id}-${i}` : id, key });
          if (!notesFirst) writes.add(writeNotes, note);
        });
        // Nothing is written while the answer runs.
        expect(calls).toEqual([]);
        answered = true;
        return name;
      },
    });
    expect(await execute(ctx, tenant, meta, spec("x1", ["key-x1a", "key-x1b"]))).toBe("x1");
    expect(answered).toBe(true);
    // One call per writer, in the order each was first given a row, with its rows in the order they were added.
    expect(calls.map((c) => [c.writer, c.keys])).toEqual([
      ["keys", ["key-x1a", "key-x1b"]],
      ["notes", ["note of key-x1a", "note of key-x1b"]],
    ]);
    expect(calls[0]!.namesInTransaction).toBe(1);
    expect(calls[0]!.namesCommitted).toBe(0);
    expect(await keys(["key-x1a", "key-x1b"])).toEqual(["key-x1a", "key-x1b"]);

    calls.length = 0;
    // The notes are written first this time, then the keys fail: the notes go with the transaction.
    await expect(execute(ctx, tenant, meta, spec("x-bad", ["key-x2", "bad"], true))).rejects.toThrow(/check constraint/);
    expect(calls.map((c) => c.writer)).toEqual(["notes", "keys"]);
    expect(await names(["x-bad"])).toEqual([]);
    expect(await keys(["key-x2"])).toEqual([]);
    const notes = await database.db.selectFrom("notes").select("note").where("note", "like", "note of key-x2%").execute();
    expect(notes).toEqual([]);
    expect((await eventsInStream()) - before).toBe(1);
  });

  it("flush writes each kind once, then nothing: the rows are not written twice", async () => {
    calls.length = 0;
    const writes = new BatchedWrites<any>();
    const id = uuidv7();
    writes.add(writeNotes, { id: `${id}-1`, note: `once ${id} 1` });
    writes.add(writeNotes, { id: `${id}-2`, note: `once ${id} 2` });
    await database.db.transaction().execute(async (tx) => {
      await writes.flush(tx);
      await writes.flush(tx);
    });
    expect(calls.map((c) => c.keys)).toEqual([[`once ${id} 1`, `once ${id} 2`]]);
  });
});
