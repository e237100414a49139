import { randomUUID } from "node:crypto";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MailboxDb } from "@mam/mailbox/db/schema.ts";
import { putBlobs, sha256 } from "@mam/mailbox/store/blobs.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { Stack } from "../support/stack.ts";

/** This file's connections, told apart from every other test's in pg_stat_activity. */
const APP = `blob-writes-${process.pid}`;

/**
 * A send stores all its bytes (raw, text, HTML, attachments) with one statement, as a batch
 * of filings does. Two such statements meeting on the same bytes must not deadlock, and the
 * same bytes twice in one statement (text and HTML alike, one attachment twice) are one row.
 */
describe("blobs written with one statement", () => {
  const s = new Stack({ logLevel: "warn" });
  let pool: pg.Pool;
  let db: Kysely<MailboxDb>;
  const at = new Date();

  beforeAll(async () => {
    await s.start();
    pool = new pg.Pool({ connectionString: s.iso.urls.DATABASE_URL, max: 3, options: `-c search_path=${s.iso.schema("mailbox")}`, application_name: APP });
    db = new Kysely<MailboxDb>({ dialect: new PostgresDialect({ pool }) });
  });
  afterAll(async () => {
    await db.destroy();
    await s.stop();
  });

  const rowsOf = async (ws: string) =>
    (await db.selectFrom("blobs").select(["hash"]).where("workspace_id", "=", ws).orderBy("hash").execute()).map((r) => r.hash);

  it("the same bytes twice in one statement are stored once", async () => {
    const ws = randomUUID();
    const same = Buffer.from("<p>same</p>");
    await putBlobs(
      db,
      [same, Buffer.from("raw"), same].map((data) => ({ workspaceId: ws, data })),
      at,
    );
    expect(await rowsOf(ws)).toEqual([sha256("raw"), sha256(same)].sort());
  });

  it("two writers of the same bytes, given them in opposite orders, both store them", async () => {
    const ws = randomUUID();
    const [lo, hi] = [Buffer.from("attachment one"), Buffer.from("attachment two")].sort((a, b) => (sha256(a) < sha256(b) ? -1 : 1)) as [Buffer, Buffer];
    let holding!: () => void;
    const held = new Promise<void>((r) => {
      holding = r;
    });
    let go!: () => void;
    const proceed = new Promise<void>((r) => {
      go = r;
    });
    // Another writer halfway through its statement: it has inserted `lo` (not committed yet) and inserts `hi` next.
    const other = db.transaction().execute(async (tx) => {
      await putBlobs(tx, [{ workspaceId: ws, data: lo }], at);
      holding();
      await proceed;
      await putBlobs(tx, [{ workspaceId: ws, data: hi }], at);
    });
    await held;
    // This one is given them the other way round.
    const mine = putBlobs(
      db,
      [hi, lo].map((data) => ({ workspaceId: ws, data })),
      at,
    );
    await waitFor(
      async () => {
        const r = await sql<{
          n: number;
        }>`select count(*)::int as n from pg_stat_activity where application_name = ${APP} and wait_event_type = 'Lock'`.execute(db);
        return r.rows[0]!.n === 1;
      },
      { timeoutMs: 10_000, what: "the second writer waiting for the first" },
    );
    go();
    await Promise.all([other, mine]);
    expect(await rowsOf(ws)).toEqual([sha256(lo), sha256(hi)].sort());
  });
});
