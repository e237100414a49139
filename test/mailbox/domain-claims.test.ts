import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sweepLapsedClaims } from "@mam/mailbox/commands/domain-claims.ts";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { TestDnsServer } from "@mam/testing/dns-server.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

type Rec = { purpose: string; name: string; value: string; type: string; priority: number | null };
type Claim = { id: string; domain: string; status: string; dnsRecords: Rec[] };
const DAY_MS = 86_400_000;

/**
 * Unverified custom-domain claims: several tenants may claim a name, the first DNS proof
 * owns it and ends the others, and a claim nobody proves lapses after DOMAIN_CLAIM_TTL_DAYS.
 */
describe("custom-domain claims between tenants", () => {
  const dns = new TestDnsServer();
  // The mailbox's clock: the system's, moved on by `skew` when a test needs days to pass.
  let skew = 0;
  let s: Stack;
  let squatter: string;
  let owner: string;
  let third: string;

  /** Publishes these records: several claims' records at one name add up, as DNS allows. */
  function publish(...sets: Rec[][]) {
    const zones = new Map<string, { MX: { exchange: string; priority: number }[]; TXT: string[] }>();
    for (const r of sets.flat()) {
      const z = zones.get(r.name) ?? { MX: [], TXT: [] };
      if (r.type === "MX") z.MX.push({ exchange: r.value, priority: r.priority ?? 10 });
      else z.TXT.push(r.value);
      zones.set(r.name, z);
    }
    for (const [name, z] of zones) dns.set(name, z);
  }

  const claim = async (key: string, domain: string, workspaceId?: string) => {
    const r = await s.api("POST", "/v1/domains", { key, body: { domain, ...(workspaceId ? { workspaceId } : {}) } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body as Claim;
  };
  const listed = async (key: string) => (await s.api("GET", "/v1/domains", { key })).body.domains.map((d: Claim) => d.id);

  /** The domain events of the stream, as NATS holds them. */
  async function domainEvents(): Promise<{ type: string; tenantId: string; data: { domainId: string; reason?: string } }[]> {
    return s.iso.jetstream(async (jsm) => {
      const name = eventsStreamName(s.iso.prefix);
      const info = await jsm.streams.info(name);
      const out = [];
      for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(name, { seq }).catch(() => null);
        if (!m) continue;
        const e = JSON.parse(new TextDecoder().decode(m.data));
        if (String(e.type).startsWith("Domain")) out.push(e);
      }
      return out;
    });
  }
  /** Waits (bounded) for the event that ended a claim to reach the stream, and says why it ended. */
  async function removalReason(domainId: string): Promise<string | undefined> {
    let reason: string | undefined;
    await waitFor(
      async () => {
        const e = (await domainEvents()).find((x) => x.type === "DomainRemoved" && x.data.domainId === domainId);
        reason = e?.data.reason;
        return e !== undefined;
      },
      { timeoutMs: 10_000, what: `DomainRemoved of ${domainId}` },
    );
    return reason;
  }

  beforeAll(async () => {
    const server = await dns.start();
    s = new Stack({
      logLevel: "warn",
      mailboxEnv: { DNS_SERVERS: server, DOMAIN_CLAIM_TTL_DAYS: "7" },
      mailboxClock: () => new Date(Date.now() + skew),
    });
    await s.start();
    squatter = (await provisionTenant(s, "Squatter")).key.key;
    owner = (await provisionTenant(s, "Owner")).key.key;
    third = (await provisionTenant(s, "Third")).key.key;
  });
  afterAll(async () => {
    await s.stop();
    await dns.stop();
  });

  it("a squatter's unverified claim does not stop the tenant that proves DNS control; the squatter's claim then ends", async () => {
    const sq = await claim(squatter, "contested.example");
    const own = await claim(owner, "contested.example");
    expect(own.id).not.toBe(sq.id);
    // Each claim has its own DKIM key to prove: one tenant's published records prove nothing for another.
    const dkim = (c: Claim) => c.dnsRecords.find((r) => r.purpose === "dkim")!.value;
    expect(dkim(own)).not.toBe(dkim(sq));
    publish(own.dnsRecords);
    expect((await s.api("POST", `/v1/domains/${sq.id}/verify`, { key: squatter })).body.status).toBe("pending");

    const v = await s.api("POST", "/v1/domains/contested.example/verify", { key: owner });
    expect(v.status).toBe(200);
    expect(v.body).toMatchObject({ id: own.id, status: "verified" });

    // The squatter's claim is gone for every door, and it cannot hold addresses on the name.
    expect((await s.api("GET", "/v1/domains/contested.example", { key: squatter })).status).toBe(404);
    expect((await s.api("GET", `/v1/domains/${sq.id}`, { key: squatter })).status).toBe(404);
    expect((await s.api("POST", `/v1/domains/${sq.id}/verify`, { key: squatter })).status).toBe(404);
    expect(await listed(squatter)).toEqual([]);
    expect((await s.api("POST", "/v1/inboxes", { key: squatter, body: { username: "ceo", domain: "contested.example" } })).status).toBe(400);
    const plain = (await s.api("POST", "/v1/inboxes", { key: squatter, body: { username: "plain" } })).body;
    expect((await s.api("POST", `/v1/inboxes/${plain.id}/addresses`, { key: squatter, body: { email: "ceo@contested.example" } })).status).toBe(400);
    // The owner may.
    expect((await s.api("POST", "/v1/inboxes", { key: owner, body: { username: "hello", domain: "contested.example" } })).status).toBe(201);

    // Ended by an event (a rebuilt read model agrees), which says why.
    expect(await removalReason(sq.id)).toBe("verified_elsewhere");
  });

  it("a verified domain refuses every other tenant's claim (409), the squatter's again too", async () => {
    for (const key of [third, squatter]) {
      const r = await s.api("POST", "/v1/domains", { key, body: { domain: "contested.example" } });
      expect(r.status).toBe(409);
      expect(r.body).toMatchObject({ code: "CONFLICT", error: expect.stringMatching(/another account has verified it/) });
    }
  });

  it("two tenants proving the same name at once: exactly one owns it", async () => {
    const a = await claim(squatter, "race.example");
    const b = await claim(third, "race.example");
    // Both keys published: both proofs hold, the name can still have one owner only.
    publish(a.dnsRecords, b.dnsRecords);
    const [ra, rb] = await Promise.all([
      s.api("POST", `/v1/domains/${a.id}/verify`, { key: squatter }),
      s.api("POST", `/v1/domains/${b.id}/verify`, { key: third }),
    ]);
    const answers = [ra, rb].map((r) => `${r.status}:${r.body.status ?? r.body.code}`).sort();
    expect(answers).toEqual(["200:verified", "404:NOT_FOUND"]);
    const [winner, loser] = ra.status === 200 ? [a.id, b.id] : [b.id, a.id];
    const [winnerKey, loserKey] = ra.status === 200 ? [squatter, third] : [third, squatter];
    expect((await s.api("GET", `/v1/domains/${winner}`, { key: winnerKey })).body.status).toBe("verified");
    expect((await s.api("GET", `/v1/domains/${loser}`, { key: loserKey })).status).toBe(404);
    expect(await removalReason(loser)).toBe("verified_elsewhere");
  });

  // Moves the clock on for good: the last test but one of the file.
  it("an unverified claim older than the TTL no longer blocks and leaves its tenant's listing; its end is recorded", async () => {
    const ws = (await s.api("POST", "/v1/workspaces", { key: owner, body: { name: "Second" } })).body.id;
    const old = await claim(owner, "lapse.example");
    const quiet = await claim(owner, "quiet.example", ws);
    // Until it lapses, a tenant's claim holds the name in all its workspaces.
    expect((await s.api("POST", "/v1/domains", { key: owner, body: { domain: "lapse.example", workspaceId: ws } })).status).toBe(409);
    skew = 7 * DAY_MS - 60_000;
    expect(await listed(owner)).toEqual(expect.arrayContaining([old.id, quiet.id]));

    skew = 7 * DAY_MS + 60_000;
    // Claimed again, a lapsed claim is ended first (the claim itself records why).
    const quietAgain = await claim(owner, "quiet.example");
    expect(await removalReason(quiet.id)).toBe("expired");
    expect((await s.api("GET", "/v1/domains/lapse.example", { key: owner })).status).toBe(404);
    expect((await s.api("POST", `/v1/domains/${old.id}/verify`, { key: owner })).status).toBe(404);
    // Listed, it is left out, and its end is recorded then.
    const now = await listed(owner);
    expect(now).not.toContain(old.id);
    expect(now).toContain(quietAgain.id);
    expect(await removalReason(old.id)).toBe("expired");
    // The verified domain does not lapse.
    expect((await s.api("GET", "/v1/domains/contested.example", { key: owner })).body.status).toBe("verified");
    const again = await claim(owner, "lapse.example", ws);
    expect(await listed(owner)).toContain(again.id);
  });

  it("rebuilt from its events, the read model gives the same answers", async () => {
    const snapshot = async () => {
      const out: Record<string, unknown> = {};
      for (const [who, key] of Object.entries({ squatter, owner, third })) out[who] = (await s.api("GET", "/v1/domains", { key })).body;
      out.refused = (await s.api("POST", "/v1/domains", { key: third, body: { domain: "contested.example" } })).status;
      return out;
    };
    const before = await snapshot();
    expect((before.owner as { domains: Claim[] }).domains.map((d) => d.domain)).toEqual(["contested.example", "quiet.example", "lapse.example"]);
    await s.mailbox!.destroy();
    const schema = s.iso.schema("mailbox");
    const c = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await c.connect();
    // The projection tables (as test/mailbox/replay.test.ts truncates them).
    const projections = ["inboxes", "inbox_addresses", "address_claims", "lists", "list_entries", "domains", "domain_claims", "threads", "messages", "drafts"];
    await c.query(`truncate ${[...projections, "delivery_outcomes", "applied_events", "projection_checkpoint"].map((t) => `${schema}.${t}`).join(", ")}`);
    await c.end();
    await s.startMailbox();
    expect(await snapshot()).toEqual(before);
  });

  it("a lapsed claim nobody touches is released by the mailbox's sweep, its private key with it", async () => {
    const quiet = await claim(third, "untouched.example");
    skew += 8 * DAY_MS;
    expect(await sweepLapsedClaims(s.mailbox!.ctx)).toBeGreaterThan(0);
    expect(await removalReason(quiet.id)).toBe("expired");
    const keys = await s.mailbox!.ctx.db.selectFrom("dkim_keys").select("key_ref").where("key_ref", "=", quiet.id).execute();
    expect(keys).toEqual([]);
    // A second sweep finds nothing of it left to do.
    await sweepLapsedClaims(s.mailbox!.ctx);
    expect((await domainEvents()).filter((e) => e.type === "DomainRemoved" && e.data.domainId === quiet.id)).toHaveLength(1);
  });

  it("the sweep never expires a verified claim, even one a rebuilding read model shows without its ownership yet", async () => {
    const db = s.mailbox!.ctx.db;
    const verified = await db
      .selectFrom("domains")
      .select("domain_id")
      .where("domain", "=", "contested.example")
      .where("status", "=", "verified")
      .executeTakeFirstOrThrow();
    // As a rebuild leaves it while the removal of a previous owner's claim is still to come (see projection-order.test.ts).
    const owner = await db.deleteFrom("domain_claims").where("domain", "=", "contested.example").returningAll().executeTakeFirstOrThrow();
    try {
      expect(skew).toBeGreaterThan(7 * DAY_MS);
      await sweepLapsedClaims(s.mailbox!.ctx);
      const keys = await db.selectFrom("dkim_keys").select("key_ref").where("key_ref", "=", verified.domain_id).execute();
      expect(keys).toHaveLength(1);
      expect((await db.selectFrom("domains").select("deleted_at").where("domain_id", "=", verified.domain_id).executeTakeFirstOrThrow()).deleted_at).toBeNull();
      expect((await domainEvents()).filter((e) => e.type === "DomainRemoved" && e.data.domainId === verified.domain_id)).toEqual([]);
    } finally {
      await db.insertInto("domain_claims").values(owner).execute();
    }
  });
});
