import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeBus, connectBus, type Bus } from "@mam/bus/connection.ts";
import { publishEncoded } from "@mam/bus/events.ts";
import { request } from "@mam/bus/rpc-client.ts";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import type { Publish } from "@mam/service-kit/relay.ts";
import { isolate } from "@mam/testing/isolation.ts";
import { PrivateNatsServer } from "@mam/testing/nats-server.ts";
import { PrivatePostgresServer } from "@mam/testing/postgres-server.ts";
import { freePort, runService, untilReady, type RunningProcess } from "@mam/testing/processes.ts";
import { ledgerConfig, ledgerService, TRANSFER_SUBJECT, transfer, type Transfer } from "./ledger/ledger.ts";

/**
 * Commands are all or nothing, and their events reach the stream once, in commit order per
 * tenant, whatever fails: the test ledger (a service declared on the kit, with a two-event
 * command) on a private nats-server and a private Postgres that the tests kill and stop.
 */
describe("the outbox", () => {
  const iso = isolate();
  const nats = new PrivateNatsServer();
  const postgres = new PrivatePostgresServer();
  const logger = createLogger("ledger", "silent");
  const schema = iso.schema("ledger");
  const tenant = randomUUID();
  const workspace = randomUUID();
  let env: Record<string, string>;
  let bus: Bus;
  let db: pg.Pool;
  const children: RunningProcess[] = [];

  const t = (transferId: string, over: Partial<Transfer> = {}): Transfer => ({
    tenantId: tenant,
    workspaceId: workspace,
    transferId,
    from: "bank",
    to: "alice",
    amount: 1,
    ...over,
  });
  const cfg = () => ledgerConfig({ ...env, HEALTH_PORT: "0" });

  /** Every event in the stream, in stream order. */
  async function streamed(): Promise<{ id: string; type: string; transferId: string; seq: number }[]> {
    const stream = eventsStreamName(iso.prefix);
    const info = await bus.jsm.streams.info(stream);
    const out = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages; seq++) {
      const m = await bus.jsm.streams.getMessage(stream, { seq }).catch(() => null);
      if (!m) continue;
      const e = m.json<{ id: string; type: string; data: { transferId: string } }>();
      out.push({ id: e.id, type: e.type, transferId: e.data.transferId, seq });
    }
    return out;
  }
  const eventsOf = async (transferId: string) => (await streamed()).filter((e) => e.transferId === transferId);
  const pending = async () => Number((await db.query(`select count(*) from ${schema}.outbox where published_at is null`)).rows[0].count);
  const balance = async (account: string) =>
    Number((await db.query(`select balance from ${schema}.balances where workspace_id = $1 and account = $2`, [workspace, account])).rows[0]?.balance ?? 0);

  async function launch(fault: string): Promise<RunningProcess> {
    const health = await freePort();
    const p = runService("test/outbox/ledger/main.ts", { ...env, HEALTH_PORT: String(health), LEDGER_FAULT: fault });
    children.push(p);
    await untilReady(p, health, "ledger");
    return p;
  }
  async function kill9(p: RunningProcess) {
    p.child.kill("SIGKILL");
    await p.exited;
  }
  const call = (body: Transfer) => request(bus, TRANSFER_SUBJECT, body, { timeoutMs: 15_000 });

  beforeAll(async () => {
    await Promise.all([nats.start(), postgres.start()]);
    env = { ...iso.env, NATS_URL: nats.url, DATABASE_URL: postgres.url, DB_SCHEMA: schema, LOG_LEVEL: "warn" };
    bus = await connectBus({ url: nats.url, prefix: iso.prefix, name: "outbox-test", logger });
    db = new pg.Pool({ connectionString: postgres.url, max: 2 });
  }, 60_000);

  afterAll(async () => {
    for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) await kill9(c);
    await db?.end();
    if (bus) await closeBus(bus);
    await postgres.destroy();
    await nats.stop();
  });

  it("a command's events are published after its commit, once, in order, and marked", async () => {
    const s = ledgerService(cfg(), { logger });
    await s.start();
    try {
      expect(await transfer(s.ctx, t("first", { amount: 5 }))).toEqual({ bank: -5, alice: 5 });
      const events = await eventsOf("first");
      expect(events.map((e) => e.type)).toEqual(["Debited", "Credited"]);
      const rows = await db.query(`select event_id, published_at, stream_seq from ${schema}.outbox order by seq`);
      expect(rows.rows.map((r) => [r.event_id, Number(r.stream_seq)])).toEqual(events.map((e) => [e.id, e.seq]));
      expect(rows.rows.every((r) => r.published_at)).toBe(true);
    } finally {
      await s.destroy();
    }
  });

  it("the read model refusing the second event: the command fails, and neither event exists anywhere", async () => {
    const s = ledgerService(cfg(), { logger });
    await s.start();
    try {
      const before = await balance("bank");
      await expect(transfer(s.ctx, t("refused-credit", { to: "refused" }))).rejects.toThrow(/balances_account_check|check constraint/);
      await transfer(s.ctx, t("after-refused"));
      await waitFor(async () => (await eventsOf("after-refused")).length === 2, { what: "the next transfer's events" });
      expect(await eventsOf("refused-credit")).toEqual([]);
      expect(await balance("bank")).toBe(before - 1);
    } finally {
      await s.destroy();
    }
  });

  it("Postgres failing at COMMIT: the client gets an error and no event ever appears", async () => {
    // A deferred constraint trigger runs at COMMIT: the commit itself fails, after every statement succeeded.
    await db.query(`create function ${schema}.refuse_at_commit() returns trigger language plpgsql as $$ begin raise exception 'refused at commit'; end $$`);
    await db.query(
      `create constraint trigger refuse_at_commit after insert on ${schema}.outbox deferrable initially deferred for each row when (new.envelope like '%fail-at-commit%') execute function ${schema}.refuse_at_commit()`,
    );
    const s = ledgerService(cfg(), { logger });
    await s.start();
    try {
      const before = await balance("alice");
      const reply = await call(t("fail-at-commit"));
      expect(reply.ok).toBe(false);
      expect(!reply.ok && reply.error.code).toBe("INTERNAL");
      // The tenant's next command is relayed after anything of this one would have been.
      expect((await call(t("after-commit-failure"))).ok).toBe(true);
      await waitFor(async () => (await eventsOf("after-commit-failure")).length === 2, { what: "the next transfer's events" });
      expect(await eventsOf("fail-at-commit")).toEqual([]);
      expect(await balance("alice")).toBe(before + 1);
    } finally {
      await s.destroy();
      await db.query(`drop trigger refuse_at_commit on ${schema}.outbox`);
    }
  });

  it.each([
    ["first", "Debited"],
    ["second", "Credited"],
  ])("the stream refusing the %s event of two for a while: both appear once, in order", async (_which, refusedType) => {
    const transferId = `refused-${refusedType}`;
    let refused = 0;
    const flaky: Publish = async (b, row, afterId) => {
      if (row.envelope.includes(transferId) && row.envelope.includes(`"${refusedType}"`) && refused++ < 3) throw new Error("refused by a test");
      return publishEncoded(b, row.subject, row.envelope, row.event_id, afterId);
    };
    const s = ledgerService(cfg(), { logger, publish: flaky });
    await s.start();
    try {
      await transfer(s.ctx, t(transferId));
      await waitFor(async () => (await eventsOf(transferId)).length === 2, { timeoutMs: 10_000, what: "both events" });
      expect((await eventsOf(transferId)).map((e) => e.type)).toEqual(["Debited", "Credited"]);
      expect(refused).toBeGreaterThan(0);
      expect(await pending()).toBe(0);
    } finally {
      await s.destroy();
    }
  });

  it("NATS down while commands commit: they succeed, and their events appear in commit order once NATS is back", async () => {
    const s = ledgerService(cfg(), { logger });
    await s.start();
    try {
      await nats.kill();
      const ids = ["down-1", "down-2", "down-3", "down-4"];
      for (const id of ids) expect(await transfer(s.ctx, t(id, { to: "bob", amount: 2 }))).toMatchObject({ bank: expect.any(Number) });
      expect(await balance("bob")).toBe(8);
      expect(await pending()).toBe(8);
      await nats.start();
      await waitFor(async () => (await pending()) === 0, { timeoutMs: 20_000, intervalMs: 100, what: "the outbox relayed" });
      const after = (await streamed()).filter((e) => ids.includes(e.transferId));
      expect(after.map((e) => `${e.transferId}:${e.type}`)).toEqual(ids.flatMap((id) => [`${id}:Debited`, `${id}:Credited`]));
    } finally {
      await s.destroy();
    }
  }, 60_000);

  it("kill -9 between commit and publish, then restart: each event appears exactly once", async () => {
    const held = await launch("before-publish");
    const reply = await call(t("killed-before-publish", { to: "carol" }));
    expect(reply.ok).toBe(true);
    expect(await pending()).toBe(2);
    await kill9(held);
    expect(await eventsOf("killed-before-publish")).toEqual([]);
    const restarted = await launch("");
    await waitFor(async () => (await pending()) === 0, { timeoutMs: 10_000, what: "the outbox relayed after restart" });
    expect((await eventsOf("killed-before-publish")).map((e) => e.type)).toEqual(["Debited", "Credited"]);
    await kill9(restarted);
  }, 60_000);

  it("a relay killed after publishing, before marking, is taken over by a running replica: no copy, no gap", async () => {
    const dying = await launch("after-publish");
    expect((await call(t("killed-after-publish", { to: "dave" }))).ok).toBe(true);
    // Both are in the stream, then it hangs before marking anything.
    await waitFor(() => (dying.stdout().match(/published/g) ?? []).length === 2, { what: "both events published by the dying relay" });
    // Started only now, so that the command above went to the dying process (they share a queue group).
    const replica = ledgerService(cfg(), { logger });
    await replica.start();
    try {
      // The dying relay holds the tenant's relay lock: the replica waits, it does not publish beside it.
      await new Promise((r) => setTimeout(r, 300));
      expect(await pending()).toBe(2);
      expect((await eventsOf("killed-after-publish")).map((e) => e.type)).toEqual(["Debited", "Credited"]);
      await kill9(dying);
      await waitFor(async () => (await pending()) === 0, { timeoutMs: 10_000, what: "the replica to take over" });
      const events = await eventsOf("killed-after-publish");
      expect(events.map((e) => e.type)).toEqual(["Debited", "Credited"]);
      expect(new Set(events.map((e) => e.id)).size).toBe(2);
    } finally {
      await replica.destroy();
    }
  }, 60_000);

  it("two replicas relaying the same tenants keep each tenant's commit order, and publish each event once", async () => {
    const a = ledgerService(cfg(), { logger });
    const b = ledgerService(cfg(), { logger });
    await Promise.all([a.start(), b.start()]);
    try {
      const tenants = [tenant, randomUUID()];
      const runs = tenants.map(async (tenantId) => {
        for (let i = 0; i < 15; i++) await transfer((i % 2 ? a : b).ctx, t(`pair-${tenantId}-${i}`, { tenantId, to: `p${i % 3}` }));
      });
      await Promise.all(runs);
      await waitFor(async () => (await pending()) === 0, { timeoutMs: 10_000, what: "both relays done" });
      const all = await streamed();
      for (const tenantId of tenants) {
        const mine = all.filter((e) => e.transferId.startsWith(`pair-${tenantId}-`));
        expect(mine.map((e) => `${e.transferId}:${e.type}`)).toEqual(
          Array.from({ length: 15 }, (_, i) => [`pair-${tenantId}-${i}:Debited`, `pair-${tenantId}-${i}:Credited`]).flat(),
        );
      }
      expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
    } finally {
      await Promise.all([a.destroy(), b.destroy()]);
    }
  }, 60_000);
});
