import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventSubject } from "@mam/contracts/envelope.ts";
import { MAILBOX_CONTEXT } from "@mam/contracts/mailbox-events.ts";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { RETIRED_COUNTERS } from "@mam/identity/projections/workspace-counters.ts";
import { PrivateNatsServer } from "@mam/testing/nats-server.ts";
import { envelopeOf } from "../support/events.ts";
import { provisionTenant, Stack, type StackService } from "../support/stack.ts";

const SHIPPED = fileURLToPath(new URL("../../infra/nats/nats.conf", import.meta.url));
const USERS = ["identity", "mailbox", "gateway", "smtp-ingress", "billing", "realtime", "admin"] as const;
type User = (typeof USERS)[number];

/**
 * Identity as its own NATS user on the shipped configuration: it deletes the counter consumer
 * of earlier releases, declares one per type counted, pulls and acknowledges from them.
 */
describe("identity on the shipped NATS configuration", () => {
  const dir = mkdtempSync(join(tmpdir(), "identity-user-"));
  const config = join(dir, "nats.conf");
  const passwords = Object.fromEntries(USERS.map((u) => [u, `p${randomBytes(12).toString("hex")}`])) as Record<User, string>;
  const nats = new PrivateNatsServer({
    config,
    env: Object.fromEntries(USERS.map((u) => [`NATS_${u.toUpperCase().replace(/-/g, "_")}_PASSWORD`, passwords[u]])),
  });
  const s = new Stack({
    logLevel: "silent",
    mailbox: false,
    natsEnv: (service: StackService) => ({ NATS_URL: nats.url, NATS_PREFIX: "", NATS_USER: service, NATS_PASSWORD: passwords[service as User] }),
  });
  let admin: NatsConnection;

  beforeAll(async () => {
    writeFileSync(config, readFileSync(SHIPPED, "utf8"));
    await nats.start();
    admin = await connect({ servers: nats.url, user: "admin", pass: passwords.admin });
    // The stream and the retired consumer, as an earlier release left them.
    const jsm = await jetstreamManager(admin);
    await jsm.streams.add({ name: eventsStreamName(""), subjects: ["evt.>"] });
    await jsm.consumers.add(eventsStreamName(""), { durable_name: RETIRED_COUNTERS, ack_policy: AckPolicy.Explicit, filter_subject: "evt.mailbox.>" });
  });
  afterAll(async () => {
    await admin?.close();
    await s.stop();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("starts, retires the old consumer, and counts the mailbox's inboxes", async () => {
    await s.start();
    const jsm = await jetstreamManager(admin);
    const names: string[] = [];
    for await (const c of jsm.consumers.list(eventsStreamName(""))) names.push(c.name);
    expect(names).not.toContain(RETIRED_COUNTERS);
    expect(names).toEqual(
      expect.arrayContaining([
        "identity-counts-inbox-created",
        "identity-counts-inbox-deleted",
        "identity-counts-domain-added",
        "identity-counts-domain-removed",
      ]),
    );

    const t = await provisionTenant(s, "Locked down");
    const tk = t.key.key;
    const workspaceId: string = (await s.api("POST", "/v1/workspaces", { key: tk, body: { name: "Counted" } })).body.id;
    const inboxId = randomUUID();
    const e = envelopeOf({
      type: "InboxCreated",
      context: MAILBOX_CONTEXT,
      tenantId: t.tenant.id,
      workspaceId,
      aggregateId: inboxId,
      data: {
        inboxId,
        tenantId: t.tenant.id,
        workspaceId,
        username: "agent",
        domain: s.mailDomain,
        address: `agent@${s.mailDomain}`,
        displayName: null,
        metadata: {},
      },
    });
    await jetstream(admin).publish(eventSubject("", e), JSON.stringify(e), { msgID: e.id });
    await expect.poll(async () => (await s.api("GET", `/v1/workspaces/${workspaceId}`, { key: tk })).body.inboxCount, { timeout: 10_000 }).toBe(1);
    // Acknowledged as identity's user: nothing left pending.
    await expect.poll(async () => (await jsm.consumers.info(eventsStreamName(""), "identity-counts-inbox-created")).num_ack_pending).toBe(0);
  }, 60_000);
});
