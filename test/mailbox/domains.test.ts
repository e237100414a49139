import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { TestDnsServer } from "@mam/testing/dns-server.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

type Rec = { purpose: string; name: string; value: string; status: string; type: string; priority: number | null };

describe("custom domains", () => {
  const dns = new TestDnsServer();
  let s: Stack;
  let t: Awaited<ReturnType<typeof provisionTenant>>;
  let wk: string;
  let ws: string;
  let otherWk: string;

  /** Publishes what the API told us to publish (all, or only some purposes). */
  function publish(records: Rec[], purposes = ["mx", "spf", "dkim", "dmarc"]) {
    const zones = new Map<string, { MX: { exchange: string; priority: number }[]; TXT: string[] }>();
    for (const r of records.filter((x) => purposes.includes(x.purpose))) {
      const z = zones.get(r.name) ?? { MX: [], TXT: [] };
      if (r.type === "MX") z.MX.push({ exchange: r.value, priority: r.priority ?? 10 });
      else z.TXT.push(r.value);
      zones.set(r.name, z);
    }
    for (const [name, z] of zones) dns.set(name, z);
  }

  beforeAll(async () => {
    const server = await dns.start();
    s = new Stack({ logLevel: "warn", mailboxEnv: { DNS_SERVERS: server } });
    await s.start();
    t = await provisionTenant(s);
    ws = (await s.api("POST", "/v1/workspaces", { key: t.key.key, body: { name: "Acme" } })).body.id;
    wk = (await s.api("POST", `/v1/workspaces/${ws}/keys`, { key: t.key.key, body: {} })).body.key;
    const ws2 = (await s.api("POST", "/v1/workspaces", { key: t.key.key, body: { name: "Other" } })).body.id;
    otherWk = (await s.api("POST", `/v1/workspaces/${ws2}/keys`, { key: t.key.key, body: {} })).body.key;
  });
  afterAll(async () => {
    await s.stop();
    await dns.stop();
  });

  it("registers a domain with a DKIM key and the four records to publish, pending", async () => {
    const r = await s.api("POST", "/v1/domains", { key: wk, body: { domain: "Acme.Example" } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ domain: "acme.example", status: "pending", workspaceId: ws, verifiedAt: null });
    const purposes = r.body.dnsRecords.map((x: Rec) => `${x.type}:${x.purpose}:${x.name}:${x.status}`);
    expect(purposes).toEqual([
      "MX:mx:acme.example:pending",
      "TXT:spf:acme.example:pending",
      "TXT:dkim:mam1._domainkey.acme.example:pending",
      "TXT:dmarc:_dmarc.acme.example:pending",
    ]);
    expect(r.body.dnsRecords[2].value).toMatch(/^v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]{300,}$/);
    expect(r.body.records[0]).toEqual({ type: "MX", host: "acme.example", value: `mx.${s.mailDomain}`, priority: 10 });
  });

  // Other tenants may claim an unverified name too: see domain-claims.test.ts.
  it("a tenant claims a domain in one workspace only; the platform's own domain cannot be claimed", async () => {
    const again = await s.api("POST", "/v1/domains", { key: otherWk, body: { domain: "acme.example" } });
    expect(again.status).toBe(409);
    expect((await s.api("POST", "/v1/domains", { key: t.key.key, body: { domain: s.mailDomain } })).status).toBe(409);
    expect((await s.api("POST", "/v1/domains", { key: t.key.key, body: { domain: `sub.${s.mailDomain}` } })).status).toBe(409);
    expect((await s.api("POST", "/v1/domains", { key: t.key.key, body: { domain: "not a domain" } })).status).toBe(400);
  });

  it("verifies through real DNS lookups: pending until MX, SPF and DKIM are published", async () => {
    const d = (await s.api("GET", "/v1/domains/acme.example", { key: wk })).body;
    let v = await s.api("POST", `/v1/domains/${d.id}/verify`, { key: wk });
    expect(v.body.status).toBe("pending");
    publish(d.dnsRecords, ["mx", "spf"]);
    v = await s.api("GET", "/v1/domains/acme.example/verify", { key: wk });
    expect(v.body.status).toBe("pending");
    expect(v.body.dnsRecords.map((x: Rec) => x.status)).toEqual(["verified", "verified", "pending", "pending"]);
    // A DKIM record with another key does not count.
    dns.set("mam1._domainkey.acme.example", { TXT: ["v=DKIM1; k=rsa; p=AAAA"] });
    expect((await s.api("POST", "/v1/domains/acme.example/verify", { key: wk })).body.status).toBe("pending");
    publish(d.dnsRecords, ["dkim"]);
    v = await s.api("POST", "/v1/domains/acme.example/verify", { key: wk });
    expect(v.body.status).toBe("verified");
    expect(v.body.verifiedAt).not.toBeNull();
    expect(v.body.dnsRecords.map((x: Rec) => x.status)).toEqual(["verified", "verified", "verified", "pending"]);
    expect((await s.api("GET", `/v1/domains/${d.id}`, { key: t.key.key })).body.status).toBe("verified");
    // Verified, the name is no one else's to claim.
    const stranger = await provisionTenant(s, "Stranger");
    expect((await s.api("POST", "/v1/domains", { key: stranger.key.key, body: { domain: "acme.example" } })).status).toBe(409);
  });

  it("inboxes and aliases may use a domain verified in their own workspace only", async () => {
    const inbox = await s.api("POST", "/v1/inboxes", { key: wk, body: { username: "hello", domain: "acme.example" } });
    expect(inbox.status).toBe(201);
    expect(inbox.body.email).toBe("hello@acme.example");
    const elsewhere = await s.api("POST", "/v1/inboxes", { key: otherWk, body: { username: "hello2", domain: "acme.example" } });
    expect(elsewhere.status).toBe(400);
    const other = (await s.api("POST", "/v1/inboxes", { key: otherWk, body: { username: "o" } })).body;
    const alias = await s.api("POST", `/v1/inboxes/${other.id}/addresses`, { key: otherWk, body: { email: "o@acme.example" } });
    expect(alias.status).toBe(400);
    const own = (await s.api("POST", "/v1/inboxes", { key: wk, body: { username: "plain" } })).body;
    const ok = await s.api("POST", `/v1/inboxes/${own.id}/addresses`, { key: wk, body: { email: "sales@acme.example" } });
    expect(ok.status).toBe(201);
    expect((await s.api("GET", `/v1/inboxes/${own.id}`, { key: wk })).body.email).toBe("sales@acme.example");
    // Unverified domains are refused too.
    await s.api("POST", "/v1/domains", { key: wk, body: { domain: "pending.example" } });
    expect((await s.api("POST", "/v1/inboxes", { key: wk, body: { username: "x", domain: "pending.example" } })).status).toBe(400);
  });

  it("lists and reads per scope; outsiders get 404 and change nothing", async () => {
    const mine = (await s.api("GET", "/v1/domains", { key: wk })).body.domains.map((d: { domain: string }) => d.domain);
    expect(mine).toEqual(["acme.example", "pending.example"]);
    expect((await s.api("GET", "/v1/domains", { key: otherWk })).body.domains).toEqual([]);
    for (const [m, p] of [
      ["GET", "/v1/domains/acme.example"],
      ["POST", "/v1/domains/acme.example/verify"],
      ["DELETE", "/v1/domains/acme.example"],
    ] as const) {
      expect((await s.api(m, p, { key: otherWk })).status, `${m} ${p}`).toBe(404);
    }
    expect((await s.api("GET", "/v1/domains/acme.example", { key: wk })).body.status).toBe("verified");
  });

  it("a domain in use cannot be deleted; once free, it can, and another workspace may claim it", async () => {
    const d = (await s.api("GET", "/v1/domains/pending.example", { key: wk })).body;
    expect((await s.api("DELETE", `/v1/domains/${d.id}`, { key: wk })).body).toEqual({ deleted: true, id: d.id });
    expect((await s.api("GET", "/v1/domains/pending.example", { key: wk })).status).toBe(404);
    expect((await s.api("POST", "/v1/domains", { key: otherWk, body: { domain: "pending.example" } })).status).toBe(201);
    expect((await s.api("DELETE", "/v1/domains/acme.example", { key: wk })).status).toBe(409);
  });

  it("the operator reads (and verifies) the platform domain's records, DKIM included", async () => {
    expect((await s.api("GET", "/v1/platform/domain", { key: t.key.key })).status).toBe(403);
    const p = await s.api("GET", "/v1/platform/domain", { key: s.operatorKey });
    expect(p.body.domain).toBe(s.mailDomain);
    const dkim = p.body.dnsRecords.find((r: Rec) => r.purpose === "dkim");
    expect(dkim.value).toMatch(/^v=DKIM1; k=rsa; p=/);
    publish(p.body.dnsRecords);
    const v = await s.api("POST", "/v1/platform/domain/verify", { key: s.operatorKey });
    expect(v.body.status).toBe("verified");
    expect((await s.api("GET", "/v1/platform/domain", { key: s.operatorKey })).body.dnsRecords[2].value).toBe(dkim.value);
  });

  it("no private key travels in an event", async () => {
    const text = await s.iso.jetstream(async (jsm) => {
      const name = eventsStreamName(s.iso.prefix);
      const info = await jsm.streams.info(name);
      let all = "";
      for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(name, { seq }).catch(() => null);
        if (m) all += new TextDecoder().decode(m.data);
      }
      return all;
    });
    expect(text).toContain("DomainAdded");
    expect(text).not.toContain("PRIVATE KEY");
  });
});
