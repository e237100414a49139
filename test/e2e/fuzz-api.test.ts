import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { z } from "zod";
import { ErrorBody, type ErrorCode, httpStatusOf } from "@mam/contracts/errors.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import { pathParamNames, type ForwardRoute } from "@mam/gateway/http/route.ts";
import { forwardRoutes } from "@mam/gateway/http/routes.ts";
import { TestDnsServer } from "@mam/testing/dns-server.ts";
import type { ApiResponse, CallOptions } from "@mam/testing/http.ts";
import { SmtpSink } from "@mam/testing/smtp-sink.ts";
import { arbitraryOf, hostileValue } from "@mam/testing/zod-arbitrary.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

const I = RpcContracts.identity;
const R = RpcContracts.realtime;

/**
 * Every route of the gateway's table, fed requests generated from its contract (well formed
 * and not), under every kind of key: never a 5xx; every refusal in the public error shape;
 * every success in its contract's reply shape; a refused write changes nothing the tenant
 * can list. CI runs a few cases per route with a fixed seed; `pnpm fuzz:api` runs many more
 * (FUZZ_RUNS per route, FUZZ_SEED a number, or random there, printed for a replay).
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_130);
const RUNS = Number(process.env.FUZZ_RUNS ?? 8);

// Every public code (UNAVAILABLE is public since outages answer 503 with it; a 5xx fails the test anyway).
const PublicError = ErrorBody.strict();
const KEY_KINDS = ["sa", "tk", "wk", "ak", "none", "garbage"] as const;
type KeyKindName = (typeof KEY_KINDS)[number];

/** Path segments as they go on the wire (already percent-encoded, or deliberately not). */
const HOSTILE_SEGMENTS = [
  "%ZZ",
  "%E0%A4%A",
  "%25E0",
  "%",
  "%00",
  "a%00b",
  "%ED%A0%80",
  "%C0%AF",
  "not-a-uuid",
  "00000000-0000-0000-0000-000000000000",
  "FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF",
  "..",
  "%2F",
  "%20",
  "x".repeat(3_000),
  "%0D%0AX-Injected:%201",
];

/** A path segment, resolved when its case runs (the world's ids change as cases remove things), shown by what it is. */
type Segment = (() => string) & { toString(): string };
const segment = (label: string, value: () => string): Segment => Object.assign(value, { toString: () => label });

/** The tenant's things the generated requests aim at; rebuilt when a request removed one. */
interface World {
  tenantId: string;
  tk: string;
  tkKeyId: string;
  workspaceId: string;
  wk: string;
  wkKeyId: string;
  inboxId: string;
  ak: string;
  address: string;
  listId: string;
  entryId: string;
  draftId: string;
  domainId: string;
  domainName: string;
  messageId: string;
  threadId: string;
  attachmentId: string;
  webhookId: string;
}

describe("the HTTP API under generated input", () => {
  const dns = new TestDnsServer();
  const relay = new SmtpSink();
  let s: Stack;
  const w = {} as World;
  let serial = 0;
  /** How the cases were answered, by status: printed at the end, to see how many got past validation. */
  const tally = new Map<number, number>();

  const call = (method: string, path: string, o: CallOptions = {}) => s.api(method, path, o);
  async function ok(method: string, path: string, o: CallOptions, status = [200, 201]): Promise<any> {
    const r = await call(method, path, o);
    if (!status.includes(r.status)) throw new Error(`fixture ${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  async function makeWorkspace() {
    w.workspaceId = (await ok("POST", "/v1/workspaces", { key: w.tk, body: { name: `Fuzz ${++serial}` } })).id;
    await issueWorkspaceKey();
  }
  async function issueWorkspaceKey() {
    const k = await ok("POST", `/v1/workspaces/${w.workspaceId}/keys`, { key: w.tk, body: {} });
    [w.wk, w.wkKeyId] = [k.key, k.id];
  }
  async function makeInbox() {
    const i = await ok("POST", "/v1/inboxes", { key: w.tk, body: { username: `fuzz-${++serial}`, workspaceId: w.workspaceId } });
    [w.inboxId, w.ak] = [i.id, i.apiKey];
    await Promise.all([makeAddress(), makeList(), makeDraft(), makeMessage()]);
  }
  async function makeAddress() {
    w.address = `alias-${++serial}@${s.mailDomain}`;
    await ok("POST", `/v1/inboxes/${w.inboxId}/addresses`, { key: w.tk, body: { email: w.address, primary: false } });
  }
  async function makeList() {
    w.listId = (await ok("POST", `/v1/inboxes/${w.inboxId}/lists`, { key: w.tk, body: { name: `List ${++serial}` } })).id;
    await makeEntry();
  }
  async function makeEntry() {
    w.entryId = (await ok("POST", `/v1/inboxes/${w.inboxId}/lists/${w.listId}/entries`, { key: w.tk, body: { email: `entry${++serial}@example.com` } })).id;
  }
  async function makeDraft() {
    w.draftId = (await ok("POST", `/v1/inboxes/${w.inboxId}/drafts`, { key: w.tk, body: { to: "draft@example.com", subject: "Draft" } })).id;
  }
  async function makeMessage() {
    const attachments = [{ filename: "a.txt", contentType: "text/plain", content: Buffer.from("attached").toString("base64") }];
    const body = { to: "someone@example.com", subject: "Fixture", plainBody: "hello", verified: true, attachments };
    const sent = await ok("POST", `/v1/inboxes/${w.inboxId}/send`, { key: w.tk, body });
    [w.messageId, w.threadId] = [sent.id, sent.threadId];
    w.attachmentId = (await ok("GET", `/v1/inboxes/${w.inboxId}/messages/${w.messageId}/attachments`, { key: w.tk })).attachments[0].id;
  }
  async function makeWebhook() {
    // A name that resolves nowhere: a delivery to it fails and is retried, never reaching anyone.
    const body = { url: `https://fuzz-${++serial}.invalid/hook`, events: ["message.received"] };
    w.webhookId = (await ok("POST", "/v1/webhooks", { key: w.wk, body })).id;
  }
  async function makeDomain() {
    w.domainName = `fuzz${++serial}.example.net`;
    w.domainId = (await ok("POST", "/v1/domains", { key: w.tk, body: { domain: w.domainName, workspaceId: w.workspaceId } })).id;
  }

  const status = async (path: string, key: string) => (await call("GET", path, { key })).status;

  /**
   * Until every workspace's inboxCount and domainCount equal its inboxes and domains: identity
   * counts them from the mailbox's events a moment after each change, and the snapshot of the
   * next case (before and after a refused write) must not see that moment pass.
   */
  async function countersSettled() {
    await waitFor(
      async () => {
        const [workspaces, inboxes, domains] = await Promise.all(["/v1/workspaces", "/v1/inboxes", "/v1/domains"].map((p) => ok("GET", p, { key: w.tk })));
        const held = (list: { workspaceId: string | null }[], id: string) => list.filter((x) => x.workspaceId === id).length;
        return workspaces.workspaces.every(
          (ws: { id: string; inboxCount: number; domainCount: number }) =>
            ws.inboxCount === held(inboxes.inboxes, ws.id) && ws.domainCount === held(domains.domains, ws.id),
        );
      },
      { timeoutMs: 10_000, what: "the workspaces' counters caught up" },
    );
  }
  /**
   * After a write that succeeded: puts back whatever it removed. Keys by what the route did (a
   * revoked key may still be cached for a moment); the rest by asking for it.
   */
  async function heal(r: ForwardRoute, res: ApiResponse) {
    await putBack(r, res);
    await countersSettled();
  }
  async function putBack(r: ForwardRoute, res: ApiResponse) {
    if (r.contract === I.tenantKeyRotate || r.contract === I.tenantKeyReissue) [w.tk, w.tkKeyId] = [res.body.key, res.body.id];
    if (r.contract === I.tenantKeyRevoke) {
      const k = await ok("POST", `/v1/tenants/${w.tenantId}/keys/rotate`, { key: s.operatorKey });
      [w.tk, w.tkKeyId] = [k.key, k.id];
    }
    if ((await status(`/v1/workspaces/${w.workspaceId}`, w.tk)) !== 200) {
      await makeWorkspace();
      await Promise.all([makeInbox(), makeDomain(), makeWebhook()]);
      return;
    }
    if (r.contract === I.keyRevoke) await issueWorkspaceKey();
    if (r.contract === R.webhookDelete || (await status(`/v1/webhooks/${w.webhookId}`, w.tk)) !== 200) await makeWebhook();
    if ((await status(`/v1/domains/${w.domainId}`, w.tk)) !== 200) await makeDomain();
    const inbox = await call("GET", `/v1/inboxes/${w.inboxId}`, { key: w.tk });
    if (inbox.status !== 200) return makeInbox();
    const i = w.inboxId;
    await Promise.all([
      inbox.body.addresses.some((a: { address: string }) => a.address === w.address) ? undefined : makeAddress(),
      status(`/v1/inboxes/${i}/drafts/${w.draftId}`, w.tk).then((st) => (st === 200 ? undefined : makeDraft())),
      status(`/v1/inboxes/${i}/messages/${w.messageId}/attachments`, w.tk).then((st) => (st === 200 ? undefined : makeMessage())),
      call("GET", `/v1/inboxes/${i}/lists/${w.listId}`, { key: w.tk }).then((l) => {
        if (l.status !== 200) return makeList();
        return l.body.entries.some((e: { id: string }) => e.id === w.entryId) ? undefined : makeEntry();
      }),
    ]);
  }

  /** What the tenant can list, without the fields that move on their own (delivery status). */
  async function snapshot(): Promise<unknown> {
    const i = w.inboxId;
    const paths = [
      "/v1/workspaces",
      "/v1/inboxes",
      "/v1/domains",
      `/v1/workspaces/${w.workspaceId}/keys`,
      `/v1/inboxes/${i}/lists`,
      `/v1/inboxes/${i}/drafts?limit=100`,
      "/v1/messages/folders/counts",
      `/v1/inboxes/${i}/messages?limit=100`,
      "/v1/webhooks",
    ];
    const got = await Promise.all(paths.map((p) => call("GET", p, { key: w.tk })));
    return got.map((r) => {
      if (r.body?.messages) return r.body.messages.map((m: any) => [m.id, m.isRead, m.isStarred, m.isArchived, m.labels]);
      // Delivery status moves on its own; what a request could change is the rest.
      if (r.body?.webhooks) return r.body.webhooks.map((h: any) => [h.id, h.url, h.events, h.isActive, h.workspaceId]);
      return [r.status, r.body];
    });
  }

  const keyOf = (k: KeyKindName): string | undefined =>
    ({ sa: s.operatorKey, tk: w.tk, wk: w.wk, ak: w.ak, none: undefined, garbage: `tk_${"A".repeat(43)}` })[k];

  function validSegments(r: ForwardRoute, name: string): string[] {
    const byName: Record<string, string[]> = {
      tenantId: [w.tenantId],
      workspaceId: [w.workspaceId],
      keyId: r.path.startsWith("/tenants/") ? [w.tkKeyId] : [w.wkKeyId],
      inboxId: [w.inboxId],
      messageId: [w.messageId],
      attachmentId: [w.attachmentId],
      threadId: [w.threadId],
      draftId: [w.draftId],
      listId: [w.listId],
      entryId: [w.entryId],
      domain: [w.domainName, w.domainId],
      address: [w.address],
      webhookId: [w.webhookId],
    };
    return (byName[name] ?? []).map(encodeURIComponent);
  }

  /** A path segment: this world's own (resolved when the case runs), a stranger's id, or something malformed. */
  const segmentArb = (r: ForwardRoute, name: string): fc.Arbitrary<Segment> =>
    fc.oneof(
      { weight: 6, arbitrary: fc.nat().map((n) => segment(`the world's ${name} #${n}`, () => validSegments(r, name)[n % validSegments(r, name).length]!)) },
      { weight: 1, arbitrary: fc.uuid({ version: 7 }).map((u) => segment(u, () => u)) },
      { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_SEGMENTS).map((x) => segment(x, () => x)) },
      {
        weight: 1,
        arbitrary: fc.string({ unit: "binary", maxLength: 30 }).map((x) => {
          const encoded = encodeURIComponent(x.isWellFormed() ? x : "x");
          return segment(encoded, () => encoded);
        }),
      },
    );

  function querySchemaOf(r: ForwardRoute): z.ZodObject | undefined {
    const shape = r.contract.request.shape;
    if (r.from === "query") return r.contract.request.omit(Object.fromEntries(pathParamNames(r.path).map((n) => [n, true])) as never);
    return shape.query as z.ZodObject | undefined;
  }

  function bodySchemaOf(r: ForwardRoute): z.ZodType | undefined {
    if (r.method === "get") return undefined;
    if (r.from === "body") return r.contract.request;
    return r.contract.request.shape.body as z.ZodType | undefined;
  }

  function toQuery(v: unknown): string {
    if (!v || typeof v !== "object" || Array.isArray(v)) return `q=${encodeURIComponent((JSON.stringify(v) ?? "").slice(0, MAX_QUERY_VALUE))}`;
    const q = new URLSearchParams();
    for (const [k, x] of Object.entries(v)) {
      for (const one of Array.isArray(x) ? x : [x])
        q.append(k, (typeof one === "object" && one !== null ? JSON.stringify(one) : String(one)).slice(0, MAX_QUERY_VALUE));
    }
    return q.toString();
  }

  /** Node refuses a request line past 16 KiB itself (431, before any of our code): values stay under it. */
  const MAX_QUERY_VALUE = 2_000;
  const RAW_QUERIES = [
    "",
    "",
    "",
    "limit=%ZZ",
    "workspace=not-a-uuid",
    "a[b]=c",
    "limit=1e400&limit=2",
    "offset=-1",
    "folder=nope",
    "%E0%A4%A=1",
    "inboxId=%00",
  ];

  function caseArb(r: ForwardRoute) {
    const names = pathParamNames(r.path);
    const query = querySchemaOf(r);
    const body = bodySchemaOf(r);
    return fc.record({
      key: fc.constantFrom(...KEY_KINDS),
      segments: fc.tuple(...names.map((n) => segmentArb(r, n))),
      query: query ? arbitraryOf(query).map(toQuery) : fc.constant(""),
      rawQuery: fc.constantFrom(...RAW_QUERIES),
      body: body ? fc.oneof({ weight: 8, arbitrary: arbitraryOf(body) }, { weight: 1, arbitrary: hostileValue() }) : fc.constant(undefined),
      malformed:
        r.method === "get" ? fc.constant(null) : fc.option(fc.constantFrom('{"a":', "not json", "\u0000", "[1,2", '{"__proto__":{"x":1}}'), { freq: 10 }),
      idempotencyKey: fc.option(fc.oneof(fc.uuid(), fc.constant("k".repeat(300)), fc.string({ maxLength: 20 })), { freq: 3 }),
    });
  }

  function checkAnswer(r: ForwardRoute, where: string, res: ApiResponse) {
    expect(res.status, `${where}: a 5xx`).toBeLessThan(500);
    if (res.status >= 400) {
      const e = PublicError.safeParse(res.body);
      expect(e.success, `${where}: not the error envelope`).toBe(true);
      expect(res.status, `${where}: ${res.body.code} under the wrong status`).toBe(httpStatusOf[res.body.code as ErrorCode]);
      return;
    }
    expect(r.status ?? [200], `${where}: an undocumented success status`).toContain(res.status);
    if (r.bytes) {
      if (r.bytes === "message/rfc822") expect(res.headers.get("content-type"), where).toMatch(/^message\/rfc822/);
      return;
    }
    const reply = r.contract.reply.safeParse(res.body);
    expect(reply.success, `${where}: the reply does not match its contract: ${reply.error?.message}`).toBe(true);
  }

  beforeAll(async () => {
    const dnsAddress = await dns.start();
    const relayUrl = await relay.start();
    s = new Stack({
      logLevel: "silent",
      realtime: 1,
      billing: true,
      mailboxEnv: { SMTP_RELAY_URL: relayUrl, DNS_SERVERS: dnsAddress },
      gatewayEnv: { RATE_LIMIT_MAX: "1000000", UNAUTHENTICATED_RATE_LIMIT_MAX: "1000000", BODY_LIMIT_BYTES: "262144" },
    });
    await s.start();
    const t = await provisionTenant(s, "Fuzz");
    [w.tenantId, w.tk, w.tkKeyId] = [t.tenant.id, t.key.key, t.key.id];
    await makeWorkspace();
    await Promise.all([makeInbox(), makeDomain(), makeWebhook()]);
    await countersSettled();
    console.log(`fuzz-api: FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS} (per route; ${forwardRoutes.length} routes)`);
  });
  afterAll(async () => {
    console.log(`fuzz-api: answers by status ${JSON.stringify(Object.fromEntries([...tally].sort(([a], [b]) => a - b)))}`);
    await s?.stop();
    await relay.stop();
    await dns.stop();
  });

  it("answers the four requests of issue 10 with a 4xx naming the parameter", async () => {
    const cases = [
      ["GET", "/v1/inboxes?workspace=not-a-uuid", "workspace"],
      ["GET", "/v1/domains/%25E0", undefined],
      ["GET", "/v1/domains/%E0%A4%A", "domain"],
      ["DELETE", `/v1/inboxes/${w.inboxId}/addresses/%ZZ`, "address"],
    ] as const;
    for (const [method, path, field] of cases) {
      const r = await call(method, path, { key: w.tk });
      expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBeGreaterThanOrEqual(400);
      expect(r.status, `${method} ${path}`).toBeLessThan(500);
      expect(PublicError.safeParse(r.body).success, JSON.stringify(r.body)).toBe(true);
      if (field) expect(r.body.fields.map((f: { path: string }) => f.path)).toEqual([field]);
    }
    // Decoded once: `%25E0` is the name "%E0", which no domain has.
    expect((await call("GET", "/v1/domains/%25E0", { key: w.tk })).body.code).toBe("NOT_FOUND");
    expect((await call("GET", `/v1/inboxes/${w.inboxId}/addresses/not-a-uuid`, { key: w.tk })).status).toBe(404);
    const badId = await call("GET", "/v1/inboxes/not-a-uuid", { key: w.tk });
    expect([badId.status, badId.body.fields]).toEqual([400, [{ path: "inboxId", message: expect.any(String) }]]);
    // A domain's name in the path, percent-encoded or not, finds it.
    const byName = await call("GET", `/v1/domains/${encodeURIComponent(w.domainName.toUpperCase())}`, { key: w.tk });
    expect([byName.status, byName.body.id]).toEqual([200, w.domainId]);
  });

  forwardRoutes.forEach((r, index) => {
    it(`${r.method.toUpperCase()} ${r.path}`, { timeout: 30_000 + RUNS * 3_000 }, async () => {
      await fc.assert(
        fc.asyncProperty(caseArb(r), async (c) => {
          let path = `/v1${r.path}`;
          const names = pathParamNames(r.path);
          names.forEach((n, i) => {
            path = path.replace(`:${n}`, c.segments[i]!());
          });
          const qs = [c.query, c.rawQuery].filter(Boolean).join("&");
          const url = qs ? `${path}?${qs}` : path;
          const o: CallOptions = { key: keyOf(c.key) };
          if (c.malformed !== null) o.raw = c.malformed;
          else if (c.body !== undefined) o.body = c.body;
          if (c.idempotencyKey !== null) o.headers = { "idempotency-key": c.idempotencyKey };
          const write = r.method !== "get";
          const before = write ? await snapshot() : undefined;
          const res = await call(r.method.toUpperCase(), url, o);
          const where = `${r.method.toUpperCase()} ${url.slice(0, 200)} as ${c.key} ${o.raw ?? JSON.stringify(o.body)?.slice(0, 300)} → ${res.status} ${JSON.stringify(res.body)?.slice(0, 300)}`;
          tally.set(res.status, (tally.get(res.status) ?? 0) + 1);
          checkAnswer(r, where, res);
          if (!write) return;
          if (res.status >= 400) expect(await snapshot(), `${where}: a refused write changed something`).toEqual(before);
          else await heal(r, res);
        }),
        { seed: SEED + index, numRuns: RUNS, endOnFailure: true },
      );
    });
  });
});
