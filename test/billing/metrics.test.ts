import { randomUUID } from "node:crypto";
import nodemailer from "nodemailer";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReturnPaths } from "@mam/mailbox/delivery/return-path.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { SmtpSink } from "@mam/testing/smtp-sink.ts";
import { dsn } from "../support/dsn.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

const SECRET = "metrics-bounce-secret-0123456789abcdef";
/** Polls of the API spaced so that a slow run stays inside the key's rate limit (600 a minute). */
const POLL_MS = 100;

type Inbox = { id: string; email: string; apiKey: string };
type Counts = { sent: number; received: number; bounced: number };

/**
 * GET /v1/metrics: counts from the event stream agree with what was sent, received and
 * bounced; windows cut at a midpoint; every key kind's scope and pinning; rebuild from the stream.
 */
describe("metrics", () => {
  const relay = new SmtpSink();
  let s: Stack;
  let tk: string;
  let tenantId: string;
  let mainWs: string;
  let ws2: string;
  let wk: string;
  let a: Inbox;
  let b: Inbox;
  let stranger: { tk: string; ws: string; inbox: Inbox };
  let start: Date;
  let mid: Date;
  const smtp = () => nodemailer.createTransport({ host: "127.0.0.1", port: s.smtp!.port, secure: false, ignoreTLS: true });
  const metrics = (key: string, q = "") => s.api("GET", `/v1/metrics${q}`, { key });
  const counts = async (key: string, q = "") => (await metrics(key, q)).body.counts as Counts;
  const list = async (i: Inbox, query: string) =>
    (await s.api("GET", `/v1/inboxes/${i.id}/messages?${query}&limit=100`, { key: i.apiKey })).body.messages as { status: string }[];

  beforeAll(async () => {
    s = new Stack({ logLevel: "warn", smtp: true, billing: true, mailboxEnv: { SMTP_RELAY_URL: await relay.start(), BOUNCE_SECRET: SECRET } });
    await s.start();
    start = new Date();
    const t = await provisionTenant(s, "Metered");
    tk = t.key.key;
    tenantId = t.tenant.id;
    mainWs = t.workspace.id;
    ws2 = (await s.api("POST", "/v1/workspaces", { key: tk, body: { name: "Second" } })).body.id;
    wk = (await s.api("POST", `/v1/workspaces/${ws2}/keys`, { key: tk, body: {} })).body.key;
    a = (await s.api("POST", "/v1/inboxes", { key: tk, body: { username: "meter-a" } })).body;
    b = (await s.api("POST", "/v1/inboxes", { key: wk, body: { username: "meter-b" } })).body;
    const other = await provisionTenant(s, "Other");
    stranger = {
      tk: other.key.key,
      ws: other.workspace.id,
      inbox: (await s.api("POST", "/v1/inboxes", { key: other.key.key, body: { username: "other" } })).body,
    };

    // Before the midpoint: a to b, locally (a sent, b received).
    expect(
      (await s.api("POST", `/v1/inboxes/${a.id}/send`, { key: a.apiKey, body: { to: b.email, subject: "local", plainBody: "x", verified: true } })).status,
    ).toBe(200);
    await waitFor(async () => (await list(b, "direction=inbound")).length === 1, { timeoutMs: 10_000, intervalMs: POLL_MS, what: "b received" });
    await waitFor(async () => (await counts(tk)).received === 1, { timeoutMs: 10_000, intervalMs: POLL_MS, what: "the counters of the first half" });
    await new Promise((r) => setTimeout(r, 50));
    mid = new Date();
    await new Promise((r) => setTimeout(r, 50));

    // After: a to an outside address through the relay, bounced; and mail to a over SMTP.
    const before = relay.received.length;
    const out = await s.api("POST", `/v1/inboxes/${a.id}/send`, {
      key: a.apiKey,
      body: { to: "bob@partner.example", subject: "out", plainBody: "x", verified: true },
    });
    expect(out.status).toBe(200);
    await waitFor(async () => relay.received.length > before, { timeoutMs: 10_000, intervalMs: POLL_MS, what: "the relay got it" });
    const returnPath = new ReturnPaths(Buffer.from(SECRET), s.mailDomain).address(out.body.id);
    await smtp().sendMail({ envelope: { from: "", to: [returnPath] }, raw: dsn(returnPath, "bob@partner.example") });
    await waitFor(
      () =>
        smtp()
          .sendMail({ from: "carol@outside.example", to: a.email, subject: "hello a", text: "x" })
          .then(
            () => true,
            () => false,
          ),
      { timeoutMs: 10_000, intervalMs: POLL_MS, what: "a known to smtp-ingress" },
    );
    await waitFor(async () => (await list(a, "direction=inbound")).length === 1, { timeoutMs: 10_000, intervalMs: POLL_MS, what: "a received" });
    await waitFor(async () => (await list(a, "direction=outbound")).some((m) => m.status === "bounced"), {
      timeoutMs: 10_000,
      intervalMs: POLL_MS,
      what: "bounced",
    });
    await waitFor(async () => JSON.stringify(await counts(tk)) === JSON.stringify({ sent: 2, received: 2, bounced: 1 }), {
      timeoutMs: 10_000,
      intervalMs: POLL_MS,
      what: "the counters of everything",
    });
  });
  afterAll(async () => {
    await s.stop();
    await relay.stop();
  });

  it("a tenant key: the whole tenant, equal to what was sent, received and bounced, and to the mailbox's lists", async () => {
    const r = await metrics(tk);
    expect(r.status).toBe(200);
    expect(r.body.scope).toEqual({ tenantId, workspaceId: null, inboxId: null });
    expect(r.body.counts).toEqual({ sent: 2, received: 2, bounced: 1 });
    expect(r.body.resources).toEqual({ inboxes: 2, domains: 0 });
    // The default window: the last 30 days, echoed as ISO strings.
    expect(Date.parse(r.body.window.to) - Date.parse(r.body.window.from)).toBe(30 * 86_400_000);
    // The mailbox's own lists say the same.
    const outA = await list(a, "direction=outbound");
    const inA = await list(a, "direction=inbound");
    const inB = await list(b, "direction=inbound");
    const outB = await list(b, "direction=outbound");
    expect(outA.length + outB.length).toBe(r.body.counts.sent);
    expect(inA.length + inB.length).toBe(r.body.counts.received);
    expect(outA.filter((m) => m.status === "bounced").length).toBe(r.body.counts.bounced);
    expect(await counts(tk, `?inbox=${a.id}`)).toEqual({ sent: outA.length, received: inA.length, bounced: 1 });
  });

  it("windows count only the events inside them, [from, to)", async () => {
    const iso = (d: Date) => d.toISOString();
    const later = new Date(Date.now() + 60_000);
    expect(await counts(tk, `?from=${iso(start)}&to=${iso(mid)}`)).toEqual({ sent: 1, received: 1, bounced: 0 });
    expect(await counts(tk, `?from=${iso(mid)}&to=${iso(later)}`)).toEqual({ sent: 1, received: 1, bounced: 1 });
    expect(await counts(tk, `?from=${iso(new Date(start.getTime() - 86_400_000))}&to=${iso(start)}`)).toEqual({ sent: 0, received: 0, bounced: 0 });
    expect(await counts(b.apiKey, `?from=${iso(start)}&to=${iso(mid)}`)).toEqual({ sent: 0, received: 1, bounced: 0 });
    expect(await counts(b.apiKey, `?from=${iso(mid)}&to=${iso(later)}`)).toEqual({ sent: 0, received: 0, bounced: 0 });
  });

  it("from and to in ISO-8601, epoch seconds and epoch milliseconds give the same window", async () => {
    const fromS = Math.floor(start.getTime() / 1000) - 60;
    const toS = Math.ceil(Date.now() / 1000) + 60;
    const answers = await Promise.all(
      [
        `?from=${fromS}&to=${toS}`,
        `?from=${fromS * 1000}&to=${toS * 1000}`,
        `?from=${new Date(fromS * 1000).toISOString()}&to=${new Date(toS * 1000).toISOString()}`,
      ].map((q) => metrics(tk, q)),
    );
    for (const r of answers) {
      expect(r.status).toBe(200);
      expect(r.body.window).toEqual({ from: new Date(fromS * 1000).toISOString(), to: new Date(toS * 1000).toISOString() });
      expect(r.body.counts).toEqual({ sent: 2, received: 2, bounced: 1 });
    }
    // With an offset, too.
    expect((await metrics(tk, `?from=${encodeURIComponent("2026-01-01T01:00:00+01:00")}&to=${toS}`)).body.window.from).toBe("2026-01-01T00:00:00.000Z");
  });

  it("refuses from after to, unparsable bounds and windows over 400 days", async () => {
    for (const q of [
      "?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
      "?from=yesterday",
      "?to=12.5",
      "?from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
      `?workspace=nope`,
    ]) {
      const r = await metrics(tk, q);
      expect(r.status, q).toBe(400);
      expect(r.body.code).toBe("VALIDATION_ERROR");
    }
  });

  it("a tenant key narrows to a workspace or an inbox of its own; anything else is a 404", async () => {
    const w = await metrics(tk, `?workspace=${ws2}`);
    expect(w.body.scope).toEqual({ tenantId, workspaceId: ws2, inboxId: null });
    expect(w.body.counts).toEqual({ sent: 0, received: 1, bounced: 0 });
    expect(w.body.resources).toEqual({ inboxes: 1, domains: 0 });
    const i = await metrics(tk, `?workspace=${mainWs}&inbox=${a.id}`);
    expect(i.body.scope).toEqual({ tenantId, workspaceId: mainWs, inboxId: a.id });
    expect(i.body.counts).toEqual({ sent: 2, received: 1, bounced: 1 });
    expect(i.body.resources).toEqual({ inboxes: 1, domains: 0 });
    for (const q of [
      `?workspace=${ws2}&inbox=${a.id}`,
      `?workspace=${stranger.ws}`,
      `?inbox=${stranger.inbox.id}`,
      `?workspace=${randomUUID()}`,
      `?inbox=${randomUUID()}`,
    ]) {
      const r = await metrics(tk, q);
      expect(r.status, q).toBe(404);
      expect(r.body.code).toBe("NOT_FOUND");
    }
    // The other tenant sees nothing of this one.
    expect((await metrics(stranger.tk)).body.counts).toEqual({ sent: 0, received: 0, bounced: 0 });
  });

  it("a workspace key is pinned to its workspace; an inbox of it narrows, another is a 404", async () => {
    for (const q of ["", `?workspace=${mainWs}`, `?workspace=${stranger.ws}`]) {
      const r = await metrics(wk, q);
      expect(r.status, q).toBe(200);
      expect(r.body.scope).toEqual({ tenantId, workspaceId: ws2, inboxId: null });
      expect(r.body.counts).toEqual({ sent: 0, received: 1, bounced: 0 });
    }
    expect((await metrics(wk, `?inbox=${b.id}`)).body.scope).toEqual({ tenantId, workspaceId: ws2, inboxId: b.id });
    for (const q of [`?inbox=${a.id}`, `?inbox=${stranger.inbox.id}`]) expect((await metrics(wk, q)).status, q).toBe(404);
  });

  it("an inbox key sees its own inbox whatever it asks; another inbox is a 404; the operator's key a 403", async () => {
    for (const q of ["", `?workspace=${ws2}`, `?inbox=${a.id}`]) {
      const r = await metrics(a.apiKey, q);
      expect(r.status, q).toBe(200);
      expect(r.body.scope).toEqual({ tenantId, workspaceId: mainWs, inboxId: a.id });
      expect(r.body.counts).toEqual({ sent: 2, received: 1, bounced: 1 });
    }
    expect((await metrics(a.apiKey, `?inbox=${b.id}`)).status).toBe(404);
    const op = await metrics(s.operatorKey);
    expect(op.status).toBe(403);
    expect(op.body.code).toBe("FORBIDDEN");
  });

  it("emptied and replayed from the stream, or replayed over themselves, the counters give the same answers", async () => {
    const iso = (d: Date) => d.toISOString();
    const queries = [
      "",
      `?from=${iso(start)}&to=${iso(mid)}`,
      `?from=${iso(mid)}&to=${iso(new Date(Date.now() + 60_000))}`,
      `?inbox=${a.id}`,
      `?workspace=${ws2}`,
    ];
    const snapshot = async () => Promise.all(queries.map(async (q) => ({ ...(await metrics(tk, q)).body, window: undefined })));
    const before = await snapshot();
    await s.billing!.destroy();
    const c = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await c.connect();
    const schema = s.iso.schema("billing");
    const tables = ["metric_workspaces", "metric_inboxes", "metric_messages", "metric_counters", "metric_applied", "metric_checkpoint"];
    await c.query(`truncate ${tables.map((t) => `${schema}.${t}`).join(", ")}`);
    expect((await c.query(`select count(*)::int as n from ${schema}.metric_counters`)).rows[0].n).toBe(0);
    await c.end();
    const billing = await s.startBilling();
    await billing.metrics!.caughtUp();
    expect(await snapshot()).toEqual(before);
    // Every event delivered again over the counters as they are (the checkpoints alone
    // emptied: the consumers replay the stream): each one is counted once.
    await billing.destroy();
    const c2 = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await c2.connect();
    await c2.query(`truncate ${schema}.metric_checkpoint`);
    await c2.end();
    const again = await s.startBilling();
    await again.metrics!.caughtUp();
    expect(await snapshot()).toEqual(before);
  });
});
