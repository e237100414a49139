import { Resolver } from "node:dns/promises";
import { authenticate } from "mailauth";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { TestDnsServer } from "@mam/testing/dns-server.ts";
import { SmtpSink } from "@mam/testing/smtp-sink.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

type Rec = { purpose: string; name: string; value: string; type: string; priority: number | null };

/**
 * The mailbox keeps parsed DKIM keys in memory: a custom domain removed and added again gets
 * a new key (published under the same selector), and mail from it is signed with that one,
 * never with the key that was cached for the domain before.
 */
describe("DKIM keys of a custom domain added again", () => {
  const dns = new TestDnsServer();
  const relay = new SmtpSink();
  let s: Stack;
  let dnsAddress: string;
  let wk: string;

  function publish(records: Rec[]) {
    const zones = new Map<string, { MX: { exchange: string; priority: number }[]; TXT: string[] }>();
    for (const r of records) {
      const z = zones.get(r.name) ?? { MX: [], TXT: [] };
      if (r.type === "MX") z.MX.push({ exchange: r.value, priority: r.priority ?? 10 });
      else z.TXT.push(r.value);
      zones.set(r.name, z);
    }
    for (const [name, z] of zones) dns.set(name, z);
  }

  /** Adds and verifies the domain, then sends from a new inbox on it: the DKIM verdict of what the relay got. */
  async function sendFromDomain(username: string): Promise<{ inboxId: string; domainId: string; results: { result: string; domain: string }[] }> {
    const d = await s.api("POST", "/v1/domains", { key: wk, body: { domain: "signed.example" } });
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    publish(d.body.dnsRecords);
    expect((await s.api("POST", `/v1/domains/${d.body.id}/verify`, { key: wk })).body.status).toBe("verified");
    const inbox = (await s.api("POST", "/v1/inboxes", { key: wk, body: { username, domain: "signed.example" } })).body;
    const before = relay.received.length;
    const sent = await s.api("POST", `/v1/inboxes/${inbox.id}/send`, {
      key: inbox.apiKey,
      body: { to: "far@example.com", subject: username, plainBody: "x", verified: true },
    });
    expect(sent.status).toBe(200);
    await waitFor(() => relay.received.length > before, { timeoutMs: 10_000, what: "relayed" });
    const got = relay.received.at(-1)!;
    const resolver = new Resolver();
    resolver.setServers([dnsAddress]);
    const auth = await authenticate(got.raw, {
      ip: "127.0.0.1",
      helo: "localhost",
      sender: got.from,
      resolver: (name: string, type: string) => resolver.resolve(name, type as "TXT") as Promise<never>,
    });
    const results = auth.dkim.results.map((x: { status: { result: string }; signingDomain: string }) => ({ result: x.status.result, domain: x.signingDomain }));
    return { inboxId: inbox.id, domainId: d.body.id, results };
  }

  beforeAll(async () => {
    dnsAddress = await dns.start();
    const relayUrl = await relay.start();
    s = new Stack({ logLevel: "warn", mailboxEnv: { SMTP_RELAY_URL: relayUrl, DNS_SERVERS: dnsAddress } });
    await s.start();
    const t = await provisionTenant(s);
    const ws = (await s.api("POST", "/v1/workspaces", { key: t.key.key, body: { name: "Signed" } })).body.id;
    wk = (await s.api("POST", `/v1/workspaces/${ws}/keys`, { key: t.key.key, body: {} })).body.key;
  });
  afterAll(async () => {
    await s.stop();
    await relay.stop();
    await dns.stop();
  });

  it("mail from the domain added again is signed with its new key", async () => {
    const first = await sendFromDomain("first");
    expect(first.results).toEqual([{ result: "pass", domain: "signed.example" }]);
    expect((await s.api("DELETE", `/v1/inboxes/${first.inboxId}`, { key: wk })).status).toBe(200);
    expect((await s.api("DELETE", `/v1/domains/${first.domainId}`, { key: wk })).status).toBe(200);
    // Added again: a new key, published in place of the old one.
    const again = await sendFromDomain("again");
    expect(again.domainId).not.toBe(first.domainId);
    expect(again.results).toEqual([{ result: "pass", domain: "signed.example" }]);
  });
});
