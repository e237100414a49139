import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { heldLease, LEASE_APPLICATION_NAME, SessionLease } from "../../packages/db/src/lease.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { serverUrls } from "@mam/testing/servers.ts";

/**
 * SessionLease on the real Postgres: the leases of this process share one connection, take
 * and give back their own locks on it, never let two of them hold one name, and are all lost
 * (then taken again) when that connection dies.
 */
describe("SessionLease", () => {
  const url = serverUrls().DATABASE_URL;
  const logger = createLogger("lease-test", "silent");
  /** Names of this run's own (advisory locks are the whole database's). */
  const tag = randomBytes(5).toString("hex");
  let db: pg.Client;
  const started: SessionLease[] = [];

  /** A lease that records what it is told: each `acquired` with the lease it ran under, each `lost`. */
  function lease(name: string) {
    const seen = { acquired: [] as ({ name: string; pid: number } | undefined)[], lost: 0 };
    const l = new SessionLease({
      url,
      name: `${tag}:${name}`,
      logger,
      acquired: async () => void seen.acquired.push(heldLease()),
      lost: async () => void seen.lost++,
    });
    started.push(l);
    return Object.assign(l, { seen });
  }

  /** This process's lease connections on the server. */
  const connections = async () =>
    (await db.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where application_name = $1", [LEASE_APPLICATION_NAME])).rows[0]!.n;
  /** The server process granted the lock of `name` (its bigint key shows in pg_locks as two halves). */
  const holderOf = async (name: string): Promise<number | undefined> =>
    (
      await db.query<{ pid: number }>(
        `select pid from pg_locks where locktype = 'advisory' and granted and objsubid = 1
           and database = (select oid from pg_database where datname = current_database())
           and ((classid::bigint << 32) | objid::bigint) = hashtextextended($1, 0)`,
        [`${tag}:${name}`],
      )
    ).rows[0]?.pid;

  beforeAll(async () => {
    db = new pg.Client({ connectionString: url });
    await db.connect();
  });
  afterEach(async () => {
    for (const l of started.splice(0)) await l.stop();
  });
  afterAll(async () => {
    await db?.end();
  });

  it("holds leases of different names on one connection, gives each back as it stops, and ends the connection with the last", async () => {
    const a = lease("a");
    const b = lease("b");
    await a.start();
    await b.start();
    expect([a.holding, b.holding]).toEqual([true, true]);
    expect(await connections()).toBe(1);
    const pid = await holderOf("a");
    expect(await holderOf("b")).toBe(pid);
    // What ran under each lease was told the server process holding it (rebuild.ts checks pg_locks for it).
    expect([a.seen.acquired, b.seen.acquired]).toEqual([[{ name: `${tag}:a`, pid }], [{ name: `${tag}:b`, pid }]]);

    await a.stop();
    expect(a.seen.lost).toBe(1);
    // Given back on the connection, which stays for b.
    expect(await holderOf("a")).toBeUndefined();
    expect(await holderOf("b")).toBe(pid);
    expect(await connections()).toBe(1);

    await b.stop();
    await waitFor(async () => (await connections()) === 0, { timeoutMs: 10_000, what: "the lease connection ended" });
  });

  it("never lets two leases of one name in this process both hold it; the one standing by takes over when the holder stops", async () => {
    // Keeps the connection open throughout: what the others give back is given back on it.
    const other = lease("other");
    await other.start();
    const first = lease("one");
    const second = lease("one");
    await first.start();
    await second.start();
    // The server would grant it to the second too (the same session): it stands by instead.
    expect([first.holding, second.holding]).toEqual([true, false]);
    expect(second.seen.acquired).toEqual([]);

    await first.stop();
    expect(first.seen.lost).toBe(1);
    await waitFor(() => second.holding, { timeoutMs: 10_000, what: "the second taking over" });
    expect(second.seen.acquired).toEqual([{ name: `${tag}:one`, pid: await holderOf("other") }]);

    await second.stop();
    expect(other.holding).toBe(true);
    expect(await connections()).toBe(1);
    // Each gave back what it took: another session can take the name.
    const outside = new pg.Client({ connectionString: url });
    await outside.connect();
    try {
      const r = await outside.query<{ got: boolean }>("select pg_try_advisory_lock(hashtextextended($1, 0)) as got", [`${tag}:one`]);
      expect(r.rows[0]!.got).toBe(true);
    } finally {
      await outside.end();
    }
  });

  it("loses every lease on the connection when it is terminated, and takes them again on a new one", async () => {
    const a = lease("a");
    const b = lease("b");
    const standingBy = lease("a");
    for (const l of [a, b, standingBy]) await l.start();
    expect([a.holding, b.holding, standingBy.holding]).toEqual([true, true, false]);
    const before = (await holderOf("a"))!;
    expect(await holderOf("b")).toBe(before);

    await db.query("select pg_terminate_backend($1)", [before]);
    const heldAnew = async (name: string) => ![undefined, before].includes(await holderOf(name));
    await waitFor(async () => (await heldAnew("a")) && (await heldAnew("b")), { timeoutMs: 10_000, what: "both names held again" });
    const after = (await holderOf("a"))!;
    expect(after).not.toBe(before);
    expect(await holderOf("b")).toBe(after);
    expect([a.seen.lost, b.seen.lost, standingBy.seen.lost]).toEqual([1, 1, 0]);
    // Name a went to one of its two leases, told the new connection's server process.
    const holdersOfA = [a, standingBy].filter((l) => l.holding);
    expect(holdersOfA).toHaveLength(1);
    expect(holdersOfA[0]!.seen.acquired.at(-1)).toEqual({ name: `${tag}:a`, pid: after });
    expect(b.seen.acquired).toEqual([
      { name: `${tag}:b`, pid: before },
      { name: `${tag}:b`, pid: after },
    ]);
    // The terminated one gone, the new one alone.
    await waitFor(async () => (await connections()) === 1, { timeoutMs: 10_000, what: "one lease connection" });
  });
  it("a holder that cannot stop what it ran ends the connection rather than give the lock back: the name goes on under another server process", async () => {
    const failing = new SessionLease({
      url,
      name: `${tag}:stubborn`,
      logger,
      acquired: async () => undefined,
      lost: async () => {
        throw new Error("still running");
      },
    });
    const other = lease("stubborn");
    const bystander = lease("bystander");
    started.push(failing);
    for (const l of [failing, other, bystander]) await l.start();
    expect([failing.holding, other.holding, bystander.holding]).toEqual([true, false, true]);
    const before = (await holderOf("stubborn"))!;
    await failing.stop();
    await waitFor(() => other.holding, { timeoutMs: 10_000, what: "the other lease of the name holding it" });
    // Not the connection the unstopped work was granted the lock on, which its own check reads.
    expect(await holderOf("stubborn")).not.toBe(before);
    expect(other.seen.acquired.at(-1)?.pid).not.toBe(before);
    // Every lease on that connection was lost with it, and is held again.
    expect(bystander.seen.lost).toBe(1);
    await waitFor(() => bystander.holding, { timeoutMs: 10_000, what: "the bystander holding again" });
  });
});
