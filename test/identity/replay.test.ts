import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { PROJECTION as IDENTITY_DURABLE } from "@mam/identity/projections/identity-read-model.ts";
import { loadConfig } from "@mam/identity/config.ts";
import { IdentityService } from "@mam/identity/service.ts";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/** Identity's read models are projections: dropping them and replaying gives the same API. */
describe("replaying identity's events", () => {
  const s = new Stack({ logLevel: "warn" });
  const keys: string[] = [];
  const tenantKeys: string[] = [];

  /** Every answer a client could get about what exists, through a gateway with an empty cache. */
  async function snapshot() {
    const g = await s.startGateway();
    const call = s.client(s.gateways.length - 1);
    const out: Record<string, unknown> = {};
    for (const tk of tenantKeys) {
      const list = await call("GET", "/v1/workspaces", { key: tk });
      out[`list ${tk}`] = list.body;
      for (const w of list.body.workspaces as { id: string }[]) {
        out[`get ${w.id}`] = (await call("GET", `/v1/workspaces/${w.id}`, { key: tk })).body;
        out[`keys ${w.id}`] = (await call("GET", `/v1/workspaces/${w.id}/keys`, { key: tk })).body;
      }
    }
    for (const k of keys) {
      const me = await call("GET", "/v1/me", { key: k });
      out[`me ${k.slice(0, 12)}`] = [me.status, me.body];
    }
    await g.destroy();
    s.gateways.pop();
    return out;
  }

  async function sql(q: string) {
    const c = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await c.connect();
    try {
      return (await c.query(q)).rows;
    } finally {
      await c.end();
    }
  }

  beforeAll(async () => {
    await s.start();
    for (const name of ["One", "Two"]) {
      const t = await provisionTenant(s, name);
      tenantKeys.push(t.key.key);
      keys.push(t.key.key);
      for (const ws of ["Acme Corp", "TalentHub", "Gone"]) {
        const w = (await s.api("POST", "/v1/workspaces", { key: t.key.key, body: { name: ws } })).body;
        const k1 = (await s.api("POST", `/v1/workspaces/${w.id}/keys`, { key: t.key.key, body: { name: "first" } })).body;
        const k2 = (await s.api("POST", `/v1/workspaces/${w.id}/keys`, { key: t.key.key, body: {} })).body;
        keys.push(k1.key, k2.key);
        await s.api("DELETE", `/v1/workspaces/${w.id}/keys/${k2.id}`, { key: t.key.key });
        if (ws === "Gone") await s.api("DELETE", `/v1/workspaces/${w.id}`, { key: t.key.key });
      }
      // The freed slug taken again: on replay the delete must come before this create.
      const again = (await s.api("POST", "/v1/workspaces", { key: t.key.key, body: { name: "Gone" } })).body;
      expect(again.slug).toBe("gone");
      keys.push((await s.api("POST", `/v1/workspaces/${again.id}/keys`, { key: t.key.key, body: {} })).body.key);
    }
  });
  afterAll(() => s.stop());

  it("drop the read model, replay the stream: identical answers", async () => {
    const before = await snapshot();
    expect(Object.keys(before).length).toBeGreaterThan(10);
    await s.identity.destroy();
    await sql(`DROP SCHEMA ${s.identityEnv().DB_SCHEMA} CASCADE`);
    await s.startIdentity();
    expect(await snapshot()).toEqual(before);
  });

  it("redelivering every event over the existing read model changes nothing", async () => {
    const before = await snapshot();
    const schema = s.identityEnv().DB_SCHEMA;
    const rowsBefore = await sql(`select count(*)::int as n from ${schema}.applied_events`);
    await s.identity.destroy();
    await s.iso.jetstream((jsm) => jsm.consumers.delete(eventsStreamName(s.iso.prefix), IDENTITY_DURABLE));
    await s.startIdentity();
    expect(await snapshot()).toEqual(before);
    expect(await sql(`select count(*)::int as n from ${schema}.applied_events`)).toEqual(rowsBefore);
  });

  it("the key store holds hashes only: no plaintext key in the read model or the events", async () => {
    const schema = s.identityEnv().DB_SCHEMA;
    const dump = JSON.stringify(await sql(`select * from ${schema}.api_keys`));
    for (const k of [...keys, s.operatorKey]) expect(dump).not.toContain(k);
    expect(dump).toMatch(/"key_hash":"[0-9a-f]{64}"/);
  });

  it("generates an operator key once when none is configured, and retires it when one is", async () => {
    const env: Record<string, string> = { ...s.identityEnv(), DB_SCHEMA: s.iso.schema("identity_gen") };
    delete (env as Record<string, string>).SUPER_ADMIN_KEY;
    // Its own stream too, so this tenant-less deployment starts from nothing.
    env.NATS_PREFIX = `${s.iso.tag}g.`;
    const printed: string[] = [];
    const boot = async (e: Record<string, string>) => {
      const id = new IdentityService(loadConfig(e), { logger: createLogger("identity", "silent"), onGeneratedOperatorKey: (k) => printed.push(k) });
      await id.start();
      return id;
    };
    try {
      await (await boot(env)).destroy();
      await (await boot(env)).destroy();
      expect(printed).toHaveLength(1);
      expect(printed[0]).toMatch(/^sa_[A-Za-z0-9_-]{43}$/);
      const rows = await sql(`select kind, revoked_at from ${env.DB_SCHEMA}.api_keys`);
      expect(rows).toEqual([{ kind: "super_admin", revoked_at: null }]);
      await (await boot({ ...env, SUPER_ADMIN_KEY: s.operatorKey })).destroy();
      const after = await sql(`select name, revoked_at is null as active from ${env.DB_SCHEMA}.api_keys order by created_at`);
      expect(after).toEqual([
        { name: "Generated operator key", active: false },
        { name: "SUPER_ADMIN_KEY", active: true },
      ]);
      // Another key, then back to the first: the first is live again, the other retired.
      const other = `sa_${"b".repeat(43)}`;
      await (await boot({ ...env, SUPER_ADMIN_KEY: other })).destroy();
      await (await boot({ ...env, SUPER_ADMIN_KEY: s.operatorKey })).destroy();
      const live = await sql(`select key_hash from ${env.DB_SCHEMA}.api_keys where revoked_at is null`);
      const { hashKey } = await import("@mam/scope/key-hash.ts");
      expect(live).toEqual([{ key_hash: hashKey(s.operatorKey) }]);
    } finally {
      await s.iso.jetstream((jsm) => jsm.streams.delete(eventsStreamName(env.NATS_PREFIX!)).catch(() => false));
    }
  });
});
