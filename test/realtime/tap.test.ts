import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// The tapping side uses nothing of ours: only the NATS client, as a consumer outside the project would.
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { PrivateNatsServer } from "@mam/testing/nats-server.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/** A stream's name under a deployment's NATS_PREFIX (none in production: EVENTS and FEED). */
const streamName = (prefix: string, base: "EVENTS" | "FEED") => {
  const tag = prefix.replace(/[^A-Za-z0-9]/g, "").toUpperCase();
  return tag ? `${tag}_${base}` : base;
};

/** The published JSON Schemas (docs/events/), as a consumer would validate what it reads. */
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
const schemaOf = (file: string) => ajv.compile(JSON.parse(readFileSync(new URL(`../../docs/events/${file}`, import.meta.url), "utf8")));
const matchesSchema = (file: string, value: unknown) => {
  const validate = schemaOf(file);
  return validate(value) ? true : validate.errors;
};

interface Tapped {
  subject: string;
  msgId: string | undefined;
  body: Record<string, any>;
}

/**
 * Everything a stream holds under a filter, read with an ordered consumer (nothing left on the
 * server), in batches until one comes back short after its wait: the server fills a fetch with
 * every entry it holds, so a short one is the end. Not the pending count each message carries:
 * nats-server 2.9 has reported 0 on a wildcard filter with entries still to come.
 */
async function readAll(js: JetStreamClient, stream: string, filter: string): Promise<Tapped[]> {
  const consumer = await js.consumers.get(stream, { filter_subjects: filter, deliver_policy: DeliverPolicy.All });
  const out: Tapped[] = [];
  for (;;) {
    let got = 0;
    for await (const m of await consumer.fetch({ max_messages: 256, expires: 1000 })) {
      got++;
      out.push({ subject: m.subject, msgId: m.headers?.get("Nats-Msg-Id"), body: m.json() });
    }
    if (got < 256) return out;
  }
}

/**
 * Taps one workspace's events as docs/events.md tells an outside consumer to: a subject filter
 * on the event stream and on the feed, with an ordered consumer and with a durable one.
 */
describe("tapping one workspace with the NATS client alone", () => {
  let s: Stack;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let prefix: string;
  let tenantId: string;
  const ws: Record<"A" | "B", string> = { A: "", B: "" };

  /** Two inboxes in a workspace, the first writing to the second. */
  async function mailIn(name: "A" | "B", key: string) {
    const inbox = async (username: string) =>
      (await s.api("POST", "/v1/inboxes", { key, body: { username, workspaceId: ws[name] } })).body as { id: string; apiKey: string; email: string };
    const [from, to] = [await inbox(`tap-${name.toLowerCase()}-1`), await inbox(`tap-${name.toLowerCase()}-2`)];
    const sent = await s.api("POST", `/v1/inboxes/${from.id}/send`, {
      key: from.apiKey,
      body: { to: [to.email], subject: `in ${name}`, plainBody: `hello ${name}`, verified: true },
    });
    expect(sent.status).toBe(200);
    return { from, to };
  }

  beforeAll(async () => {
    s = new Stack({ logLevel: "warn", realtime: 1 });
    await s.start();
    prefix = s.iso.prefix;
    nc = await connect({ servers: s.iso.urls.NATS_URL });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
    const t = await provisionTenant(s, "Tapped");
    tenantId = t.tenant.id;
    ws.A = (await s.api("POST", "/v1/workspaces", { key: t.key.key, body: { name: "A" } })).body.id;
    ws.B = (await s.api("POST", "/v1/workspaces", { key: t.key.key, body: { name: "B" } })).body.id;
    await mailIn("A", t.key.key);
    await mailIn("B", t.key.key);
  });
  afterAll(async () => {
    await nc?.close();
    await s?.stop();
  });

  /** How many messages a stream holds under a filter (the server counts them per subject). */
  const held = async (stream: string, filter: string) =>
    Object.values((await jsm.streams.info(stream, { subjects_filter: filter })).state.subjects ?? {}).reduce((n, c) => n + c, 0);
  const waitFor = async (cond: () => Promise<boolean>, what: string) => {
    for (const deadline = Date.now() + 15_000; !(await cond()); ) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it("the event stream: evt.*.<tenant>.<workspace>.> gives that workspace's domain events, enveloped, and none of another's", async () => {
    const EVENTS = streamName(prefix, "EVENTS");
    const filterOf = (w: string) => `${prefix}evt.*.${tenantId}.${w}.>`;
    // Both workspaces' messages are through: the one not tapped is there to be left out.
    for (const w of [ws.A, ws.B]) {
      await waitFor(async () => (await held(EVENTS, `${prefix}evt.mailbox.${tenantId}.${w}.MessageDelivered`)) === 1, "the message delivered");
    }
    const tapped = await readAll(js, EVENTS, filterOf(ws.A));
    const types = tapped.map((e) => e.body.type);
    expect(types).toEqual(expect.arrayContaining(["WorkspaceCreated", "InboxCreated", "MessageSent", "MessageReceived", "MessageDelivered"]));
    expect(types.filter((t) => t === "InboxCreated")).toHaveLength(2);
    for (const e of tapped) {
      expect(Object.keys(e.body).sort()).toEqual(
        [
          "actor",
          "aggregateId",
          "aggregateVersion",
          "causationId",
          "context",
          "correlationId",
          "data",
          "id",
          "occurredAt",
          "schemaVersion",
          "tenantId",
          "type",
          "workspaceId",
        ].sort(),
      );
      expect(e.body).toMatchObject({ tenantId, workspaceId: ws.A, schemaVersion: 1 });
      expect(e.subject).toBe(`${prefix}evt.${e.body.context}.${tenantId}.${ws.A}.${e.body.type}`);
      // The envelope's id is the message's Nats-Msg-Id: the stream stores an event once.
      expect(e.msgId).toBe(e.body.id);
      expect(matchesSchema(`${e.body.context}.${e.body.type}.v${e.body.schemaVersion}.schema.json`, e.body), e.body.type).toBe(true);
    }
    const sent = tapped.find((e) => e.body.type === "MessageSent")!;
    expect(sent.body.data).toMatchObject({ subject: "in A", to: [expect.stringContaining("tap-a-2@")] });
    expect(JSON.stringify(tapped)).not.toContain(ws.B);
    expect(await held(EVENTS, filterOf(ws.B))).toBeGreaterThan(0);
  });

  it("the feed: rt.<tenant>.<workspace>.> gives that workspace's public events, to an ordered consumer or a durable one of the tapper's own", async () => {
    const FEED = streamName(prefix, "FEED");
    const filter = `${prefix}rt.${tenantId}.${ws.A}.>`;
    for (const w of [ws.A, ws.B]) await waitFor(async () => (await held(FEED, `${prefix}rt.${tenantId}.${w}.>`)) === 3, "three feed entries");
    const tapped = await readAll(js, FEED, filter);
    expect(tapped.map((e) => e.body.eventType).sort()).toEqual(["message.delivered", "message.received", "message.sent"]);
    for (const e of tapped) {
      expect(e.body).toMatchObject({ tenantId, workspaceId: ws.A, message: { subject: "in A", plainBody: "hello A" } });
      expect(e.msgId).toBe(e.body.eventId);
      expect(matchesSchema("feed-event.schema.json", e.body)).toBe(true);
      expect(e.subject).toBe(`${prefix}rt.${tenantId}.${ws.A}.${e.body.inboxId}.${e.body.eventType}`);
    }

    // A durable consumer of one's own keeps its place across reconnects: acknowledged entries are not delivered again.
    await jsm.consumers.add(FEED, { durable_name: "tapper", filter_subject: filter, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All });
    const durable = await js.consumers.get(FEED, "tapper");
    const first = [];
    for await (const m of await durable.fetch({ max_messages: 3, expires: 5_000 })) {
      first.push(m.json<{ eventId: string; workspaceId: string }>());
      await m.ackAck();
      if (first.length === 3) break;
    }
    expect(first.map((e) => e.eventId)).toEqual(tapped.map((e) => e.body.eventId));
    expect(first.every((e) => e.workspaceId === ws.A)).toBe(true);
    expect((await durable.info()).num_pending).toBe(0);
  });
});

/**
 * The permissions docs/events.md tells an operator to give a tapping user, taken from the
 * document itself, on a locked-down server of the test's own: each user reads its
 * workspace, and neither another workspace nor a durable consumer not its own.
 */
describe("a tapping user on a locked-down server, with the permissions docs/events.md gives", () => {
  const T = "01a2aaaa-0000-7000-8000-000000000001";
  const A = "01a2aaaa-0000-7000-8000-00000000000a";
  const B = "01a2aaaa-0000-7000-8000-00000000000b";
  // nats-server reads a variable's value as a config value: a password must start with a letter
  // (a hex one starting with a digit is read as a number and stops the server).
  const password = () => `p${randomBytes(12).toString("hex")}`;
  const passwords = { admin: password(), durable: password(), replay: password() };
  const dir = mkdtempSync(join(tmpdir(), "tap-conf-"));
  const config = join(dir, "nats.conf");
  let nats: PrivateNatsServer;
  const opened: NatsConnection[] = [];
  const as = async (user: string, pass: string) => {
    const nc = await connect({ servers: nats.url, user, pass });
    opened.push(nc);
    return nc;
  };

  /** The document's user blocks (the code blocks that declare a user), for this tenant and workspace A. */
  const documentedUsers = () => {
    const doc = readFileSync(new URL("../../docs/events.md", import.meta.url), "utf8");
    const blocks = [...doc.matchAll(/```\n(\{\n {2}user: [\s\S]*?)```/g)].map((m) => m[1]!.replaceAll("<t>", T).replaceAll("<w>", A));
    return blocks;
  };

  beforeAll(async () => {
    const users = documentedUsers();
    expect(users).toHaveLength(2);
    writeFileSync(config, `authorization {\n  users: [\n    { user: admin, password: $NATS_ADMIN_PASSWORD }\n${users.join("\n")}\n  ]\n}\n`);
    nats = new PrivateNatsServer({
      config,
      env: { NATS_ADMIN_PASSWORD: passwords.admin, NATS_TAP_ACME_PASSWORD: passwords.durable, NATS_TAP_ACME_REPLAY_PASSWORD: passwords.replay },
    });
    await nats.start();
    // The platform's part, as the operator's user: both streams, an event and an entry in two
    // workspaces, the platform's durable consumers, and the tapper's durable on the feed.
    const admin = await as("admin", passwords.admin);
    const jsm = await jetstreamManager(admin);
    await jsm.streams.add({ name: "EVENTS", subjects: ["evt.>"] });
    await jsm.streams.add({ name: "FEED", subjects: ["rt.>"] });
    const js = jetstream(admin);
    for (const w of [A, B]) {
      await js.publish(`evt.mailbox.${T}.${w}.MessageReceived`, JSON.stringify({ workspaceId: w }));
      await js.publish(`rt.${T}.${w}._.message.received`, JSON.stringify({ workspaceId: w }));
    }
    for (const durable of ["mailbox-read-model", "realtime-feed"]) {
      await jsm.consumers.add("EVENTS", { durable_name: durable, filter_subject: "evt.mailbox.>", ack_policy: AckPolicy.Explicit });
    }
    await jsm.consumers.add("FEED", {
      durable_name: "tap-acme",
      filter_subject: `rt.${T}.${A}.>`,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
    });
  });
  afterAll(async () => {
    for (const nc of opened) await nc.close().catch(() => undefined);
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("the durable tapper reads and acknowledges its consumer, and nothing else", async () => {
    const nc = await as("tap-acme", passwords.durable);
    const js = jetstream(nc);
    const consumer = await js.consumers.get("FEED", "tap-acme");
    const got = [];
    for await (const m of await consumer.fetch({ max_messages: 1, expires: 5_000 })) {
      got.push(m.json<{ workspaceId: string }>().workspaceId);
      await m.ackAck();
    }
    expect(got).toEqual([A]);
    expect((await consumer.info()).num_pending).toBe(0);
    // Neither a consumer of its own choosing (another workspace's filter) nor another consumer's messages.
    const jsm = await jetstreamManager(nc);
    await expect(jsm.consumers.add("FEED", { durable_name: "mine", filter_subject: `rt.${T}.${B}.>`, ack_policy: AckPolicy.None })).rejects.toThrow(
      /permissions violation/i,
    );
    await expect(nc.request("$JS.API.CONSUMER.MSG.NEXT.EVENTS.realtime-feed", JSON.stringify({ batch: 1 }), { timeout: 2_000 })).rejects.toThrow(
      /permissions violation/i,
    );
  });

  it("the replaying tapper reads its workspace with an ordered consumer, and is kept from other filters and from the platform's durables", async () => {
    const nc = await as("tap-acme-replay", passwords.replay);
    const js = jetstream(nc);
    const mine = await js.consumers.get("EVENTS", { filter_subjects: `evt.*.${T}.${A}.>`, deliver_policy: DeliverPolicy.All });
    const got = [];
    for await (const m of await mine.fetch({ max_messages: 1, expires: 5_000 })) got.push(m.json<{ workspaceId: string }>().workspaceId);
    expect(got).toEqual([A]);
    // Another workspace's filter: refused when the consumer is created.
    await expect(js.consumers.get("EVENTS", { filter_subjects: `evt.*.${T}.${B}.>`, deliver_policy: DeliverPolicy.All }).then((c) => c.info())).rejects.toThrow(
      /permissions violation/i,
    );
    // A platform durable: neither pulled from nor re-declared with this user's filter.
    await expect(nc.request("$JS.API.CONSUMER.MSG.NEXT.EVENTS.realtime-feed", JSON.stringify({ batch: 1 }), { timeout: 2_000 })).rejects.toThrow(
      /permissions violation/i,
    );
    const redeclare = { stream_name: "EVENTS", config: { durable_name: "realtime-feed", filter_subject: `evt.*.${T}.${A}.>`, ack_policy: "none" } };
    await expect(nc.request(`$JS.API.CONSUMER.CREATE.EVENTS.realtime-feed.evt.*.${T}.${A}.>`, JSON.stringify(redeclare), { timeout: 2_000 })).rejects.toThrow(
      /permissions violation/i,
    );
  });
});
