import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import nodemailer from "nodemailer";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { openDatabase } from "../../packages/db/src/database.ts";
import { LEASE_APPLICATION_NAME } from "../../packages/db/src/lease.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { METRICS_CONSUMER } from "@mam/billing/metrics/projection.ts";
import { ingestStreamName } from "@mam/contracts/ingest.ts";
import { publicEventId } from "@mam/contracts/realtime-feed.ts";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { PROJECTION as IDENTITY_READ_MODEL } from "@mam/identity/projections/identity-read-model.ts";
import { DELIVERY_DURABLE } from "@mam/mailbox/delivery/worker.ts";
import { INGEST_DURABLE } from "@mam/mailbox/delivery/inbound.ts";
import { PROJECTION as MAILBOX_READ_MODEL } from "@mam/mailbox/projections/mailbox-read-model.ts";
import { FEED_DURABLE } from "@mam/realtime/feed/renderer.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { SmtpSink } from "@mam/testing/smtp-sink.ts";
import { SmtpTranscript } from "@mam/testing/smtp-transcript.ts";
import { WsClient } from "@mam/testing/ws-client.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

type Inbox = { id: string; email: string; apiKey: string };
type Event = { type: "event"; event_id: string; event_type: string; message?: { subject: string } };
type Envelope = { id: string; type: string; aggregateId: string; aggregateVersion: number; occurredAt: string };

/** Waits spaced so that polling stays inside a key's rate limit. */
const POLL = { timeoutMs: 20_000, intervalMs: 100 };

/**
 * Every service as two replicas on one NATS and one Postgres (started two at a time, as a
 * scaled deployment's are): the flows end to end through alternating gateways and SMTP
 * replicas, each effect once, and a tenant's events in the order they were committed.
 */
describe("two replicas of every service", () => {
  const relay = new SmtpSink();
  let s: Stack;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let receiver: Server;
  let hookUrl: string;
  const hooks: { headers: IncomingHttpHeaders; body: { subject?: string; eventId?: string } }[] = [];
  let tk: string;
  let tenantId: string;
  let ws1: string;
  let ws2: string;
  let a: Inbox;
  let b: Inbox;
  let live: WsClient;

  /** Each call goes to the next gateway in turn. */
  let turn = 0;
  const api = (method: string, path: string, o: { key: string; body?: unknown }) => s.client(turn++ % 2)(method, path, o);
  const smtpPorts = () => [s.smtp!, ...s.smtpReplicas].map((r) => r.port);
  /** RCPT's answer for `to` on one smtp-ingress replica (nothing is sent). */
  const rcpt = async (port: number, to: string) => {
    const t = await SmtpTranscript.open(port);
    try {
      await t.reply();
      await t.command("EHLO client.example");
      await t.command("MAIL FROM:<ada@example.org>");
      return (await t.command(`RCPT TO:<${to}>`)).slice(0, 3);
    } finally {
      await t.command("QUIT").catch(() => "");
    }
  };
  const messages = async (i: Inbox, query = "") =>
    (await api("GET", `/v1/inboxes/${i.id}/messages?limit=100${query}`, { key: i.apiKey })).body.messages as { id: string; subject: string; status: string }[];
  /** Both replicas of a shared durable consumer are pulling from it. */
  const bothPulling = (stream: string, durable: string) =>
    waitFor(async () => ((await jsm.consumers.info(stream, durable).catch(() => undefined))?.num_waiting ?? 0) >= 2, {
      ...POLL,
      what: `both replicas pulling ${durable}`,
    });

  /**
   * A read model applied in stream order: one replica pulls its consumer, the holder of its
   * lease (a session advisory lock, keyed by the lease's name); the other stands by. Every
   * lease of this process, both replicas of every service, is held on one connection.
   */
  const onePulling = async (durable: string, service: string) => {
    const name = `${durable}:${s.iso.schema(service)}:${s.iso.prefix}`;
    const db = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await db.connect();
    try {
      const { rows } = await db.query(
        `select count(*)::int as holders, count(*) filter (where a.application_name = $2)::int as ours,
           (select count(*)::int from pg_stat_activity where application_name = $2) as connections
         from pg_locks l join pg_stat_activity a on a.pid = l.pid
         where l.locktype = 'advisory' and l.granted and l.objsubid = 1
           and l.database = (select oid from pg_database where datname = current_database())
           and ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0)`,
        [name, LEASE_APPLICATION_NAME],
      );
      expect({ durable, ...rows[0] }).toEqual({ durable, holders: 1, ours: 1, connections: 1 });
    } finally {
      await db.end();
    }
    await waitFor(async () => ((await jsm.consumers.info(eventsStreamName(s.iso.prefix), durable).catch(() => undefined))?.num_waiting ?? 0) >= 1, {
      ...POLL,
      what: `the holder pulling ${durable}`,
    });
  };

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        hooks.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", () => r()));
    hookUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
    s = new Stack({
      logLevel: "warn",
      gateways: 2,
      identities: 2,
      mailboxes: 2,
      smtp: true,
      smtps: 2,
      realtime: 2,
      billing: true,
      billings: 2,
      mailboxEnv: { SMTP_RELAY_URL: await relay.start() },
    });
    await s.start();
    nc = await connect({ servers: s.iso.urls.NATS_URL });
    jsm = await jetstreamManager(nc);
  });
  afterAll(async () => {
    live?.close();
    await nc?.close();
    await s?.stop();
    await relay.stop();
    receiver?.close();
  });

  it("shares each durable consumer between the two replicas of its service, or lets one pull it for stream order", async () => {
    const events = eventsStreamName(s.iso.prefix);
    await bothPulling(ingestStreamName(s.iso.prefix), INGEST_DURABLE);
    await bothPulling(events, DELIVERY_DURABLE);
    // The feed's renderer: one replica holds its lease and pulls, the other stands by (stream order).
    expect(s.realtimes.map((r) => r.rendering()).sort()).toEqual([false, true]);
    await waitFor(async () => ((await jsm.consumers.info(events, FEED_DURABLE).catch(() => undefined))?.num_waiting ?? 0) >= 1, {
      ...POLL,
      what: "the renderer pulling",
    });
    await onePulling(METRICS_CONSUMER, "billing");
    await onePulling(IDENTITY_READ_MODEL, "identity");
    await onePulling(MAILBOX_READ_MODEL, "mailbox");
  });

  it("opens one new schema from several replicas at the same moment", async () => {
    const logger = createLogger("replicas", "silent");
    for (let round = 0; round < 5; round++) {
      const schema = s.iso.schema(`race_${round}`);
      const opened = await Promise.all([0, 1, 2].map(() => openDatabase({ url: s.iso.urls.DATABASE_URL, schema, logger, poolSize: 1, migrations: {} })));
      for (const d of opened) {
        expect(await d.ping()).toBe(true);
        await d.close();
      }
    }
  });

  it("provisions through alternating gateways", async () => {
    const t = await provisionTenant(s, "Replicated");
    tk = t.key.key;
    tenantId = t.tenant.id;
    ws1 = t.workspace.id;
    ws2 = (await api("POST", "/v1/workspaces", { key: tk, body: { name: "Second" } })).body.id;
    a = (await api("POST", "/v1/inboxes", { key: tk, body: { username: "rep-a" } })).body;
    b = (await api("POST", "/v1/inboxes", { key: tk, body: { username: "rep-b", workspaceId: ws2 } })).body;
    // Read-your-writes on either gateway, whichever replica answers.
    for (const i of [0, 1]) {
      expect((await s.client(i)("GET", `/v1/inboxes/${b.id}`, { key: tk })).body).toMatchObject({ id: b.id, email: b.email });
      expect((await s.client(i)("GET", "/v1/workspaces", { key: tk })).body.workspaces.map((w: { id: string }) => w.id)).toContain(ws2);
    }
  });

  it("refuses a revoked key on both gateways", async () => {
    const issued = (await api("POST", `/v1/workspaces/${ws2}/keys`, { key: tk, body: { name: "short-lived" } })).body;
    // Each gateway resolves it once, so each has it cached.
    for (const i of [0, 1]) expect((await s.client(i)("GET", "/v1/inboxes", { key: issued.key })).status).toBe(200);
    expect((await s.client(1)("DELETE", `/v1/workspaces/${ws2}/keys/${issued.id}`, { key: tk })).status).toBe(200);
    for (const i of [0, 1]) {
      await waitFor(async () => (await s.client(i)("GET", "/v1/inboxes", { key: issued.key })).status === 401, { ...POLL, what: `gateway ${i} refusing` });
    }
  });

  it("keeps the address directory the same on both smtp-ingress replicas", async () => {
    for (const port of smtpPorts()) await waitFor(async () => (await rcpt(port, a.email)) === "250", { ...POLL, what: "the inbox known" });
    const alias = `rep-alias@${s.mailDomain}`;
    for (const port of smtpPorts()) expect(await rcpt(port, alias)).toBe("550");
    expect((await api("POST", `/v1/inboxes/${a.id}/addresses`, { key: tk, body: { email: alias } })).status).toBe(201);
    for (const port of smtpPorts()) await waitFor(async () => (await rcpt(port, alias)) === "250", { ...POLL, what: `${port} accepting the alias` });
    expect((await api("DELETE", `/v1/inboxes/${a.id}/addresses/${encodeURIComponent(alias)}`, { key: tk })).status).toBe(200);
    for (const port of smtpPorts()) await waitFor(async () => (await rcpt(port, alias)) === "550", { ...POLL, what: `${port} refusing the alias` });
  });

  const SMTP_SUBJECTS = Array.from({ length: 8 }, (_, i) => `inbound ${i}`);
  const LOCAL_SUBJECTS = Array.from({ length: 4 }, (_, i) => `local ${i}`);
  const RELAYED_SUBJECTS = Array.from({ length: 4 }, (_, i) => `relayed ${i}`);

  it("files mail accepted by either smtp-ingress replica once, and sends locally and through the relay once each", async () => {
    live = await WsClient.open(`ws://127.0.0.1:${s.gateways[1]!.port}/v1/ws`, { "X-API-Key": tk });
    await live.next((f) => f.type === "connected");
    live.send({ type: "subscribe", workspace_ids: [ws1, ws2] });
    expect(await live.next((f) => f.type === "subscribed" || f.type === "error")).toMatchObject({ type: "subscribed" });
    expect((await api("POST", "/v1/webhooks", { key: tk, body: { url: hookUrl, events: ["message.received"] } })).status).toBe(201);

    const ports = smtpPorts();
    await Promise.all(
      SMTP_SUBJECTS.map((subject, i) =>
        nodemailer
          .createTransport({ host: "127.0.0.1", port: ports[i % 2]!, secure: false, ignoreTLS: true })
          .sendMail({ from: "Ada <ada@example.org>", to: a.email, subject, text: `Body of ${subject}` }),
      ),
    );
    const sent: string[] = [];
    for (const subject of LOCAL_SUBJECTS) {
      const r = await api("POST", `/v1/inboxes/${a.id}/send`, { key: a.apiKey, body: { to: [b.email], subject, plainBody: "x", verified: true } });
      expect(r.status).toBe(200);
      sent.push(r.body.id);
    }
    for (const subject of RELAYED_SUBJECTS) {
      const r = await api("POST", `/v1/inboxes/${b.id}/send`, {
        key: b.apiKey,
        body: { to: ["partner@example.com"], subject, plainBody: "x", verified: true },
      });
      expect(r.status).toBe(200);
      sent.push(r.body.id);
    }

    await waitFor(async () => (await messages(a, "&direction=inbound")).length >= SMTP_SUBJECTS.length, { ...POLL, what: "the SMTP mail filed" });
    await waitFor(async () => (await messages(b, "&direction=inbound")).length >= LOCAL_SUBJECTS.length, { ...POLL, what: "the local copies filed" });
    await waitFor(async () => relay.received.length >= RELAYED_SUBJECTS.length, { ...POLL, what: "the relay got the mail" });
    for (const i of [a, b])
      await waitFor(async () => (await messages(i, "&direction=outbound")).every((m) => m.status === "delivered"), { ...POLL, what: "deliveries settled" });
    await waitFor(
      () =>
        [...SMTP_SUBJECTS, ...LOCAL_SUBJECTS].every((subject) =>
          live.events<Event>().some((e) => e.event_type === "message.received" && e.message?.subject === subject),
        ),
      { ...POLL, what: "every frame" },
    );
    await waitFor(() => [...SMTP_SUBJECTS, ...LOCAL_SUBJECTS].every((subject) => hooks.some((h) => h.body.subject === subject)), {
      ...POLL,
      what: "every webhook",
    });
    // Anything that would come twice has come by now: the last of every kind is in.
    await new Promise((r) => setTimeout(r, 1_000));

    expect((await messages(a, "&direction=inbound")).map((m) => m.subject).sort()).toEqual([...SMTP_SUBJECTS].sort());
    expect((await messages(b, "&direction=inbound")).map((m) => m.subject).sort()).toEqual([...LOCAL_SUBJECTS].sort());
    expect(relay.received.map((r) => /^Subject: (.*)$/m.exec(r.raw.toString("utf8"))?.[1]?.trim()).sort()).toEqual([...RELAYED_SUBJECTS].sort());

    // One delivery record per message and recipient, whichever mailbox replica delivered it.
    const db = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await db.connect();
    try {
      const rows = await db.query(
        `select message_id, count(*)::int as n from ${s.iso.schema("mailbox")}.delivery_outcomes where message_id = any($1) group by 1`,
        [sent],
      );
      expect(rows.rows.map((r) => r.n)).toEqual(sent.map(() => 1));
    } finally {
      await db.end();
    }

    const received = live.events<Event>().filter((e) => e.event_type === "message.received");
    expect(received.map((e) => e.message?.subject).sort()).toEqual([...SMTP_SUBJECTS, ...LOCAL_SUBJECTS].sort());
    expect(hooks.map((h) => h.body.subject).sort()).toEqual([...SMTP_SUBJECTS, ...LOCAL_SUBJECTS].sort());
    expect(new Set(hooks.map((h) => h.headers["x-myagentmail-event-id"])).size).toBe(hooks.length);
  });

  it("counts each message once in billing's metrics", async () => {
    const want = { sent: LOCAL_SUBJECTS.length + RELAYED_SUBJECTS.length, received: SMTP_SUBJECTS.length + LOCAL_SUBJECTS.length, bounced: 0 };
    await waitFor(async () => JSON.stringify((await api("GET", "/v1/metrics", { key: tk })).body.counts) === JSON.stringify(want), {
      ...POLL,
      what: "the metrics",
    });
    for (const i of [0, 1]) expect((await s.client(i)("GET", "/v1/metrics", { key: tk })).body.counts).toEqual(want);
  });

  it("rebuilds billing's metrics from the stream with both replicas starting at once, each message counted once", async () => {
    const before = (await api("GET", "/v1/metrics", { key: tk })).body.counts;
    for (const b of [s.billing!, ...s.billingReplicas]) await b.destroy();
    s.billingReplicas = [];
    const schema = s.iso.schema("billing");
    const tables = ["metric_workspaces", "metric_inboxes", "metric_messages", "metric_counters", "metric_applied", "metric_checkpoint"];
    const db = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await db.connect();
    try {
      await db.query(`truncate ${tables.map((t) => `${schema}.${t}`).join(", ")}`);
    } finally {
      await db.end();
    }
    const started = await Promise.all([s.startBilling(), s.startBillingReplica()]);
    for (const b of started) await b.metrics!.caughtUp();
    await onePulling(METRICS_CONSUMER, "billing");
    for (const i of [0, 1]) expect((await s.client(i)("GET", "/v1/metrics", { key: tk })).body.counts).toEqual(before);
  });

  it("keeps the tenant's events in commit order in the stream, each once", async () => {
    const stream = eventsStreamName(s.iso.prefix);
    const filter = `${s.iso.prefix}evt.*.${tenantId}.>`;
    const n = Object.values((await jsm.streams.info(stream, { subjects_filter: filter })).state.subjects ?? {}).reduce((x, c) => x + c, 0);
    const consumer = await jetstream(nc).consumers.get(stream, { filter_subjects: filter });
    const seen: Envelope[] = [];
    for await (const m of await consumer.fetch({ max_messages: n, expires: 5_000 })) {
      seen.push(m.json<Envelope>());
      if (seen.length === n) break;
    }
    expect(seen).toHaveLength(n);
    // Each aggregate's versions rise in stream order: the relays of two replicas kept each tenant's commit order.
    const last = new Map<string, number>();
    for (const e of seen) {
      const before = last.get(e.aggregateId) ?? 0;
      expect({ id: e.id, type: e.type, version: e.aggregateVersion > before }).toEqual({ id: e.id, type: e.type, version: true });
      last.set(e.aggregateId, e.aggregateVersion);
    }
    expect(new Set(seen.map((e) => e.id)).size).toBe(n);
    // Every frame is one of these events. (Their order is asserted in test/realtime/feed-order.test.ts.)
    const ids = new Set(seen.map((e) => publicEventId(e.id, e.occurredAt)));
    expect(live.events<Event>().filter((e) => !ids.has(e.event_id))).toEqual([]);
  });
});
