import { randomBytes, randomUUID } from "node:crypto";
import { type Kysely, sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MailboxDb } from "@mam/mailbox/db/schema.ts";
import { BlobWrites, getBlobs, putBlobs, sha256 } from "@mam/mailbox/store/blobs.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { mailboxSchemaDb } from "../support/mailbox-schema.ts";

/** The connections of BlobWrites in this file, told apart from every other test's in pg_stat_activity. */
const APP = `blob-writes-concurrent-${process.pid}`;

const turn = () => new Promise((r) => setImmediate(r));

/**
 * BlobWrites: the sends storing their bytes while a statement is out go together in the next
 * one. A statement is held out here by another transaction holding (uncommitted) a row the
 * statement inserts too, so what the callers do meanwhile is not a matter of timing.
 */
describe("BlobWrites: concurrent puts", () => {
  const iso = isolate();
  /** BlobWrites' own pool, whose statements are recorded as they end. */
  let db: Kysely<MailboxDb>;
  /** Another pool: the transaction holding a row, and the test's own reads. */
  let other: Kysely<MailboxDb>;
  const inserts: { rows: number; failed: boolean }[] = [];
  const at = new Date();

  beforeAll(async () => {
    other = await mailboxSchemaDb(iso, { max: 3, applicationName: `${APP}-other` });
    db = await mailboxSchemaDb(iso, {
      max: 3,
      applicationName: APP,
      log: (e) => {
        // A row's bytes are its only Buffer parameter.
        if (/^insert into "blobs"/.test(e.query.sql))
          inserts.push({ rows: e.query.parameters.filter((p) => Buffer.isBuffer(p)).length, failed: e.level === "error" });
      },
    });
  });
  afterAll(async () => {
    await db?.destroy();
    await other?.destroy();
    await iso.cleanup();
  });

  /** Another transaction that has inserted `data` and not committed: a statement inserting it too waits until `end` is called. */
  async function holdRow(workspaceId: string, data: Buffer) {
    let held!: () => void;
    const holding = new Promise<void>((r) => {
      held = r;
    });
    let end!: (commit: boolean) => void;
    const ended = new Promise<boolean>((r) => {
      end = r;
    });
    const done = other
      .transaction()
      .execute(async (tx) => {
        await putBlobs(tx, [{ workspaceId, data }], at);
        held();
        if (!(await ended)) throw new Error("rolled back");
      })
      .catch((err: Error) => {
        if (err.message !== "rolled back") throw err;
      });
    await holding;
    return {
      commit: async () => {
        end(true);
        await done;
      },
      rollBack: async () => {
        end(false);
        await done;
      },
    };
  }

  /** Until a statement of BlobWrites' pool waits for a row lock. */
  const waitingForLock = () =>
    waitFor(
      async () => {
        const r = await sql<{ n: number }>`
          select count(*)::int as n from pg_stat_activity where application_name = ${APP} and wait_event_type = 'Lock'`.execute(other);
        return r.rows[0]!.n === 1;
      },
      { timeoutMs: 10_000, what: "BlobWrites' statement waiting for the held row" },
    );

  const stored = async (workspaceId: string, data: Buffer[]) => {
    const found = await getBlobs(
      other,
      workspaceId,
      data.map((d) => sha256(d)),
    );
    return data.map((d) => found.get(sha256(d))?.equals(d) ?? false);
  };

  /** Whether a promise has settled by now. */
  const settled = (p: Promise<unknown>) => {
    const s = { done: false };
    p.then(
      () => {
        s.done = true;
      },
      () => {
        s.done = true;
      },
    );
    return s;
  };

  it("puts made in one turn go in one statement; an idle caller's goes at once", async () => {
    inserts.length = 0;
    const w = new BlobWrites(db);
    const ws = randomUUID();
    const data = [0, 1, 2].map((i) => Buffer.from(`one turn ${i} ${ws}`));
    await Promise.all(data.map((d) => w.put([{ workspaceId: ws, data: d }], at)));
    expect(inserts).toEqual([{ rows: 3, failed: false }]);
    const alone = Buffer.from(`alone ${ws}`);
    await w.put([{ workspaceId: ws, data: alone }], at);
    expect(inserts).toEqual([
      { rows: 3, failed: false },
      { rows: 1, failed: false },
    ]);
    expect(await stored(ws, [...data, alone])).toEqual([true, true, true, true]);
  });

  it("puts made while a statement is out, over several turns, go together in the next; every caller's bytes are stored", async () => {
    inserts.length = 0;
    const w = new BlobWrites(db);
    const [wsA, wsB] = [randomUUID(), randomUUID()];
    const held = Buffer.from(`held ${wsA}`);
    const holder = await holdRow(wsA, held);
    const first = w.put([{ workspaceId: wsA, data: held }], at);
    await waitingForLock();

    // Five sends meanwhile, from two workspaces; two of them store the same bytes (an attachment sent twice).
    const shared = Buffer.from(`shared attachment ${wsB}`);
    const callers: { ws: string; data: Buffer[] }[] = [
      { ws: wsA, data: [Buffer.from(`raw 1 ${wsA}`), Buffer.from(`text 1 ${wsA}`)] },
      { ws: wsB, data: [Buffer.from(`raw 2 ${wsB}`), shared] },
      { ws: wsB, data: [Buffer.from(`raw 3 ${wsB}`), shared] },
      { ws: wsA, data: [Buffer.from(`raw 4 ${wsA}`)] },
      { ws: wsB, data: [Buffer.from(`raw 5 ${wsB}`)] },
    ];
    const puts: Promise<void>[] = [];
    for (const [i, c] of callers.entries()) {
      puts.push(
        w.put(
          c.data.map((data) => ({ workspaceId: c.ws, data })),
          at,
        ),
      );
      if (i % 2) await turn();
    }
    const states = puts.map(settled);
    await turn();
    // All wait for the statement that is out: nothing written, nothing answered.
    expect(inserts).toEqual([]);
    expect(states.map((s) => s.done)).toEqual(callers.map(() => false));
    expect(await stored(wsB, [shared])).toEqual([false]);

    await holder.commit();
    await first;
    await Promise.all(puts);
    // The held statement, then one for the five callers: 8 blobs, the shared one once.
    expect(inserts).toEqual([
      { rows: 1, failed: false },
      { rows: 7, failed: false },
    ]);
    for (const c of callers) expect(await stored(c.ws, c.data)).toEqual(c.data.map(() => true));
    expect(await stored(wsA, [held])).toEqual([true]);
  });

  it("a failed statement rejects each of its callers; the callers behind it, and later ones, are stored", async () => {
    inserts.length = 0;
    const w = new BlobWrites(db);
    const [wsF, wsG, wsH] = [randomUUID(), randomUUID(), randomUUID()];
    const held = Buffer.from(`held ${wsF}`);
    const holder = await holdRow(wsF, held);
    // Three callers in one turn: one statement, held by the row.
    // Their outcomes are taken at once: the rejections may come while the test still awaits the
    // cancelling query (on another connection), and must not count as unhandled meanwhile.
    const failing = Promise.allSettled([
      w.put([{ workspaceId: wsF, data: held }], at),
      w.put([{ workspaceId: wsF, data: Buffer.from(`a ${wsF}`) }], at),
      w.put([{ workspaceId: wsG, data: Buffer.from(`b ${wsG}`) }], at),
    ]);
    await waitingForLock();
    const behindData = [Buffer.from(`c ${wsH}`), Buffer.from(`d ${wsH}`)];
    const behind = Promise.allSettled(behindData.map((data) => w.put([{ workspaceId: wsH, data }], at)));
    await turn();
    // The held statement fails (as a lost connection or a timeout would fail it).
    const cancelled = await sql<{ ok: boolean }>`
      select pg_cancel_backend(pid) as ok from pg_stat_activity where application_name = ${APP} and wait_event_type = 'Lock'`.execute(other);
    expect(cancelled.rows).toEqual([{ ok: true }]);

    const outcomes = [...(await failing), ...(await behind)];
    expect(outcomes.map((o) => o.status)).toEqual(["rejected", "rejected", "rejected", "fulfilled", "fulfilled"]);
    for (const o of outcomes.slice(0, 3)) expect(String((o as PromiseRejectedResult).reason)).toMatch(/cancel/i);
    await holder.rollBack();
    expect(inserts).toEqual([
      { rows: 3, failed: true },
      { rows: 2, failed: false },
    ]);
    // Nothing of the failed statement was stored; everything behind it was.
    expect([...(await stored(wsF, [held, Buffer.from(`a ${wsF}`)])), ...(await stored(wsG, [Buffer.from(`b ${wsG}`)]))]).toEqual([false, false, false]);
    expect(await stored(wsH, behindData)).toEqual([true, true]);

    // And a caller after it all: the writer is not stuck.
    const later = Buffer.from(`later ${wsF}`);
    await w.put([{ workspaceId: wsF, data: later }], at);
    expect(await stored(wsF, [later])).toEqual([true]);
  });

  it("a statement takes the callers waiting up to 8 MiB of bytes; the rest go in the next", async () => {
    inserts.length = 0;
    const w = new BlobWrites(db);
    const ws = randomUUID();
    const held = Buffer.from(`held ${ws}`);
    const holder = await holdRow(ws, held);
    const first = w.put([{ workspaceId: ws, data: held }], at);
    await waitingForLock();
    const big = [0, 1, 2].map(() => randomBytes(3 * 1024 * 1024));
    const puts = big.map((data) => w.put([{ workspaceId: ws, data }], at));
    await turn();
    await holder.commit();
    await Promise.all([first, ...puts]);
    expect(inserts.map((i) => i.rows)).toEqual([1, 2, 1]);
    expect(await stored(ws, big)).toEqual([true, true, true]);
  });
});
