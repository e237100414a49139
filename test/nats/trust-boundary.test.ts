import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, AckPolicy } from "@nats-io/jetstream";
import { connectBus, inboxPrefixOf } from "@mam/bus/connection.ts";
import { eventSubject } from "@mam/contracts/envelope.ts";
import { IDENTITY_CONTEXT } from "@mam/contracts/identity-events.ts";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { loadConfig as billingConfig } from "@mam/billing/config.ts";
import { createBillingService } from "@mam/billing/service.ts";
import { loadConfig as realtimeConfig } from "@mam/realtime/config.ts";
import { RealtimeService } from "@mam/realtime/service.ts";
import { uuidv7 } from "@mam/runtime/ids.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { hashKey } from "@mam/scope/key-hash.ts";
import { PrivateNatsServer } from "@mam/testing/nats-server.ts";
import { provisionTenant, Stack, type StackService } from "../support/stack.ts";

const CONFIG = fileURLToPath(new URL("../../infra/nats/nats.conf", import.meta.url));
const USERS = ["identity", "mailbox", "gateway", "smtp-ingress", "billing", "realtime", "admin"] as const;
type User = (typeof USERS)[number];
const passwordEnv = (u: User) => `NATS_${u.toUpperCase().replace(/-/g, "_")}_PASSWORD`;

/**
 * The shipped NATS configuration (infra/nats/nats.conf) on a private server: each service
 * connects as its own user, the platform works, and no service can do another's part.
 */
describe("NATS as a trust boundary", () => {
  const passwords = Object.fromEntries(USERS.map((u) => [u, `p${randomBytes(12).toString("hex")}`])) as Record<User, string>;
  const nats = new PrivateNatsServer({ config: CONFIG, env: Object.fromEntries(USERS.map((u) => [passwordEnv(u), passwords[u]])) });
  let s: Stack;
  const others: { destroy(): Promise<void> }[] = [];
  const opened: NatsConnection[] = [];
  const EVENTS = eventsStreamName("");

  /** A raw connection as one of the users, with that service's own reply inboxes. */
  const as = async (user: User) => {
    const nc = await connect({ servers: nats.url, user, pass: passwords[user], inboxPrefix: inboxPrefixOf(user) });
    opened.push(nc);
    return nc;
  };
  /** A subscription's refusal arrives asynchronously, ending its iterator with the server's error. */
  const subscriptionRefused = async (nc: NatsConnection, subject: string) => {
    const sub = nc.subscribe(subject);
    await nc.flush();
    return (async () => {
      for await (const _ of sub) return "delivered";
      return "closed";
    })().catch((err: Error) => err.message);
  };
  /** An identity event as identity's relay would publish it: an operator key (sa_) whose hash is given. */
  const forgedKeyIssued = (key: string) => {
    const keyId = uuidv7();
    const envelope = {
      id: uuidv7(),
      type: "KeyIssued",
      schemaVersion: 1,
      context: IDENTITY_CONTEXT,
      tenantId: null,
      workspaceId: null,
      aggregateId: keyId,
      aggregateVersion: 1,
      occurredAt: new Date().toISOString(),
      causationId: null,
      correlationId: null,
      actor: { type: "system", id: null },
      data: { keyId, kind: "super_admin", name: "forged", prefix: key.slice(0, 8), keyHash: hashKey(key), tenantId: null, workspaceId: null, inboxId: null },
    };
    return { subject: eventSubject("", { context: IDENTITY_CONTEXT, tenantId: null, workspaceId: null, type: "KeyIssued" }), envelope };
  };
  const operatorKey = () => `sa_${randomBytes(32).toString("base64url")}`;
  const actsAsOperator = async (key: string) => (await s.api("POST", "/v1/tenants", { key, body: { name: "By a forged key" } })).status;

  beforeAll(async () => {
    await nats.start();
    s = new Stack({
      logLevel: "warn",
      smtp: true,
      // Over this, the raw message waits in the ingest bucket (an object store of its own).
      smtpEnv: { DIRECTORY_SNAPSHOT_WAIT_MS: "1000", INGEST_INLINE_BYTES: "100000" },
      // The shipped configuration is for a production deployment: no subject prefix.
      natsEnv: (service: StackService) => ({ NATS_URL: nats.url, NATS_PREFIX: "", NATS_USER: service, NATS_PASSWORD: passwords[service] }),
    });
    await s.start();
    // Billing and realtime connect as themselves too (they read events; nothing more yet).
    const env = (service: "billing" | "realtime") => ({
      ...s.iso.env,
      NATS_URL: nats.url,
      NATS_PREFIX: "",
      NATS_USER: service,
      NATS_PASSWORD: passwords[service],
      DB_SCHEMA: s.iso.schema(service),
    });
    others.push(createBillingService(billingConfig(env("billing")), createLogger("billing", "warn", s.logs)));
    others.push(
      new RealtimeService(realtimeConfig({ ...env("realtime"), WS_PORT: "0", WS_HOST: "127.0.0.1" }), { logger: createLogger("realtime", "warn", s.logs) }),
    );
    for (const o of others) await (o as unknown as { start(): Promise<void> }).start();
  });
  afterAll(async () => {
    for (const nc of opened) await nc.close().catch(() => undefined);
    for (const o of others) await o.destroy();
    await s?.stop();
    await nats.stop();
  });

  it("works end to end: operator key, tenant, inbox, one large SMTP message read over HTTP", async () => {
    const tenant = await provisionTenant(s, "Locked");
    const inbox = (await s.api("POST", "/v1/inboxes", { key: tenant.key.key, body: { username: "locked" } })).body;
    expect(inbox.email).toBe(`locked@${s.mailDomain}`);
    // Large enough for both object stores: the ingest bucket, and the bucket of replies too large for one NATS message.
    const text = "a line of mail through the locked-down bus\n".repeat(20_000);
    const smtp = nodemailer.createTransport({ host: "127.0.0.1", port: s.smtp!.port, secure: false, ignoreTLS: true });
    await waitFor(
      async () =>
        smtp.sendMail({ from: "sender@example.com", to: inbox.email, subject: "through the locked bus", text }).then(
          () => true,
          () => false,
        ),
      { timeoutMs: 10_000, what: "the directory to know the inbox" },
    );
    const list = async () => (await s.api("GET", `/v1/inboxes/${inbox.id}/messages`, { key: inbox.apiKey })).body.messages as { id: string; subject: string }[];
    await waitFor(async () => (await list()).length === 1, { timeoutMs: 10_000, what: "the message in the inbox" });
    const [summary] = await list();
    expect(summary!.subject).toBe("through the locked bus");
    const full = await s.api("GET", `/v1/inboxes/${inbox.id}/messages/${summary!.id}`, { key: inbox.apiKey });
    expect(full.status).toBe(200);
    expect(full.body.plainBody.trim()).toBe(text.trim());
    // Nothing the platform did was refused: the configuration grants all it needs.
    expect(nats.output.split("\n").filter((l) => /violation/i.test(l))).toEqual([]);
  });

  it("refuses a connection without credentials, or with another service's password", async () => {
    await expect(connect({ servers: nats.url })).rejects.toThrow(/authorization violation/i);
    await expect(connect({ servers: nats.url, user: "identity", pass: passwords["smtp-ingress"] })).rejects.toThrow(/authorization violation/i);
    // A service without its settings stops with one line that names them.
    await expect(connectBus({ url: nats.url, prefix: "", name: "billing", logger: createLogger("billing", "silent") })).rejects.toThrow(
      /refused a connection without credentials; set NATS_USER and NATS_PASSWORD/,
    );
    // The credentials may ride in the URL.
    const bus = await connectBus({
      url: nats.url.replace("nats://", `nats://billing:${passwords.billing}@`),
      prefix: "",
      name: "billing",
      logger: createLogger("billing", "silent"),
    });
    expect(bus.nc.info?.auth_required).toBe(true);
    await bus.nc.close();
  });

  it("lets smtp-ingress file mail and read the directory, and nothing of the other services", async () => {
    const nc = await as("smtp-ingress");
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    await expect(js.publish(forgedKeyIssued(operatorKey()).subject, "{}")).rejects.toThrow(/permissions violation/i);
    await expect(nc.request("svc.identity.key.resolve", "{}", { timeout: 2_000 })).rejects.toThrow(/permissions violation/i);
    expect(await subscriptionRefused(nc, "svc.identity.>")).toMatch(/permissions violation/i);
    expect(await subscriptionRefused(nc, `${inboxPrefixOf("gateway")}.>`)).toMatch(/permissions violation/i);
    expect(await subscriptionRefused(nc, "evt.>")).toMatch(/permissions violation/i);
    // Consumers: only on mailbox events (the directory), never on identity's or on everything.
    await expect(jsm.consumers.add(EVENTS, { durable_name: "sneak", filter_subject: "evt.identity.>", ack_policy: AckPolicy.None })).rejects.toThrow(
      /permissions violation/i,
    );
    await expect(jsm.consumers.add(EVENTS, { durable_name: "sneak", ack_policy: AckPolicy.None })).rejects.toThrow(/permissions violation/i);
    await expect(jsm.consumers.delete(EVENTS, "mailbox-read-model")).rejects.toThrow(/permissions violation/i);
    // Its directory's consumer has a random name, so it may pull by wildcard: but not from another service's durable.
    await expect(nc.request(`$JS.API.CONSUMER.MSG.NEXT.${EVENTS}.mailbox-delivery`, JSON.stringify({ batch: 1, no_wait: true }))).rejects.toThrow(
      /permissions violation/i,
    );
    // Nor read an event by its subject (its directory asks by a delivery probe instead).
    await expect(jsm.streams.getMessage(EVENTS, { last_by_subj: "evt.identity.>" })).rejects.toThrow(/permissions violation/i);
    // What it needs still works: the directory's kind of consumer.
    const directory = await js.consumers.get(EVENTS, { filter_subjects: "evt.mailbox.>" });
    expect((await directory.info()).config.filter_subject).toBe("evt.mailbox.>");
    // And asking the mailbox's read model about an address the directory lacks.
    const lookup = await nc.request("svc.mailbox.directory.lookup", JSON.stringify({ addresses: [`nobody@${s.mailDomain}`] }), { timeout: 5_000 });
    expect(lookup.json()).toMatchObject({ ok: true, body: { entries: [] } });
  });

  it("lets realtime read its feed's newest entry by subject (where a resume ends), and no event", async () => {
    const jsm = await jetstreamManager(await as("realtime"));
    await expect(jsm.streams.getMessage("FEED", { last_by_subj: "rt.>" })).resolves.not.toBeUndefined();
    await expect(jsm.streams.getMessage(EVENTS, { last_by_subj: "evt.identity.>" })).rejects.toThrow(/permissions violation/i);
  });

  it("a KeyIssued forged by any service but identity changes nothing", async () => {
    const forged = new Map<User, string>();
    for (const user of ["gateway", "mailbox", "smtp-ingress", "billing", "realtime"] as const) {
      const key = operatorKey();
      forged.set(user, key);
      const { subject, envelope } = forgedKeyIssued(key);
      // Refused with an acknowledgement too: the publish is not stored.
      await expect(jetstream(await as(user)).publish(subject, JSON.stringify(envelope), { msgID: envelope.id })).rejects.toThrow(/permissions violation/i);
    }
    // The same event from a user allowed everything (the operator's) does make an operator key,
    // and it comes after the forged ones in the stream: once it works, they would have too.
    const control = operatorKey();
    const { subject, envelope } = forgedKeyIssued(control);
    await jetstream(await as("admin")).publish(subject, JSON.stringify(envelope), { msgID: envelope.id });
    await waitFor(async () => (await actsAsOperator(control)) === 201, { timeoutMs: 10_000, what: "the admin's KeyIssued applied" });
    for (const [user, key] of forged) expect({ user, status: await actsAsOperator(key) }).toEqual({ user, status: 401 });
  });
  it("no caller can aim a service's answer at a subject of its choosing (a JetStream API or event subject)", async () => {
    const admin = await jetstreamManager(await as("admin"));
    const stored = async () => (await admin.streams.info(EVENTS)).state.messages;
    const before = await stored();
    expect(before).toBeGreaterThan(0);
    const refusedByUs = () => s.logs.entries().filter((e) => e.msg === "refused request: its reply subject is not an inbox").length;

    // Our services drop such a request without running it.
    const ingress = await as("smtp-ingress");
    ingress.publish("svc.mailbox.directory.page", "{}", { reply: `$JS.API.STREAM.PURGE.${EVENTS}` });
    const mailbox = await as("mailbox");
    mailbox.publish("svc.identity.key.resolve", "{}", { reply: "evt.identity._._.KeyIssued" });
    await Promise.all([ingress.flush(), mailbox.flush()]);
    await waitFor(async () => refusedByUs() >= 2, { timeoutMs: 10_000, what: "both requests refused by the services" });

    // And the server refuses the publish of an answer that went there anyway (no allow_responses).
    const responder = await as("identity");
    const probe = responder.subscribe("svc.identity.probe", {
      callback: (_err, msg) => {
        msg.respond(new TextEncoder().encode("{}"));
      },
    });
    await responder.flush();
    mailbox.publish("svc.identity.probe", "{}", { reply: `$JS.API.STREAM.PURGE.${EVENTS}` });
    await mailbox.flush();
    await waitFor(async () => /Publish Violation - User "identity", Subject "\$JS\.API\.STREAM\.PURGE/.test(nats.output), {
      timeoutMs: 10_000,
      what: "the server refusing identity's answer to the purge subject",
    });
    probe.unsubscribe();
    expect(await stored()).toBe(before);
    // A legitimate answer to a caller's inbox still goes through.
    const answered = responder.subscribe("svc.identity.probe2", {
      callback: (_err, msg) => {
        msg.respond(new TextEncoder().encode("ok"));
      },
    });
    await responder.flush();
    expect(new TextDecoder().decode((await mailbox.request("svc.identity.probe2", "{}", { timeout: 5_000 })).data)).toBe("ok");
    answered.unsubscribe();
  });
});
