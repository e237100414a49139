import { randomUUID } from "node:crypto";
import { AckPolicy } from "@nats-io/jetstream";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consumerCaughtUp, streamEnd } from "@mam/bus/consumer.ts";
import { closeBus, connectBus, type Bus } from "@mam/bus/connection.ts";
import { eventSubject } from "@mam/contracts/envelope.ts";
import { MAILBOX_CONTEXT } from "@mam/contracts/mailbox-events.ts";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { RETIRED_COUNTERS } from "@mam/identity/projections/workspace-counters.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { envelopeOf } from "../support/events.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/**
 * Identity's workspace counters: one consumer per event type they count, so the mailbox's
 * message events never reach identity, and counts right whatever order the types arrive in.
 */
describe("workspace counters", () => {
  const s = new Stack({ mailbox: false, logLevel: "warn" });
  let bus: Bus;
  let stream: string;
  let tk: string;
  let tenantId: string;
  let workspaceId: string;

  beforeAll(async () => {
    await s.start();
    bus = await connectBus({ url: s.iso.urls.NATS_URL, prefix: s.iso.prefix, name: "counters-test", logger: createLogger("test", "silent") });
    stream = eventsStreamName(s.iso.prefix);
    const t = await provisionTenant(s, "Counters");
    tk = t.key.key;
    tenantId = t.tenant.id;
    workspaceId = (await s.api("POST", "/v1/workspaces", { key: tk, body: { name: "Counted" } })).body.id;
  });
  afterAll(async () => {
    await closeBus(bus);
    await s.stop();
  });

  /** An event as the mailbox publishes it; resolves with its stream sequence. */
  async function publish(type: string, data: unknown, aggregateId: string): Promise<number> {
    const e = envelopeOf({ type, context: MAILBOX_CONTEXT, tenantId, workspaceId, aggregateId, data });
    return (await bus.js.publish(eventSubject(s.iso.prefix, e), JSON.stringify(e), { msgID: e.id })).seq;
  }
  const created = (inboxId: string) =>
    publish(
      "InboxCreated",
      {
        inboxId,
        tenantId,
        workspaceId,
        username: inboxId.slice(0, 8),
        domain: s.mailDomain,
        address: `${inboxId.slice(0, 8)}@${s.mailDomain}`,
        displayName: null,
        metadata: {},
      },
      inboxId,
    );
  const deleted = (inboxId: string) => publish("InboxDeleted", { inboxId, addresses: [`${inboxId.slice(0, 8)}@${s.mailDomain}`], reason: "deleted" }, inboxId);

  /** Identity's consumers on the event stream, by name. */
  async function identityConsumers() {
    const out = new Map<string, { filter: string; delivered: number; pending: number; ackPending: number }>();
    for await (const c of bus.jsm.consumers.list(stream)) {
      if (!c.name.startsWith("identity-")) continue;
      out.set(c.name, { filter: c.config.filter_subject ?? "", delivered: c.delivered.stream_seq, pending: c.num_pending, ackPending: c.num_ack_pending });
    }
    return out;
  }
  const counts = async () => {
    const w = (await s.api("GET", `/v1/workspaces/${workspaceId}`, { key: tk })).body;
    return { inboxCount: w.inboxCount, domainCount: w.domainCount };
  };
  /** Until every identity consumer has handled all its filter matches the stream holds now. */
  const settled = async () => {
    const through = await streamEnd(bus, stream);
    const names = [...(await identityConsumers()).keys()];
    await expect.poll(async () => (await Promise.all(names.map((n) => consumerCaughtUp(bus, stream, n, through)))).every(Boolean)).toBe(true);
  };

  it("counts an inbox whose deletion was applied before its creation as none, and the others", async () => {
    const [gone, kept] = [randomUUID(), randomUUID()];
    // The deletion first, as a replay or a lagging consumer of creations would have it.
    await deleted(gone);
    await settled();
    expect(await counts()).toEqual({ inboxCount: 0, domainCount: 0 });
    await created(gone);
    await created(kept);
    await expect.poll(counts).toEqual({ inboxCount: 1, domainCount: 0 });
    await settled();
    expect(await counts()).toEqual({ inboxCount: 1, domainCount: 0 });
  });

  it("takes none of the mailbox's message events", async () => {
    const seq = await publish("MessageSent", { messageId: randomUUID() }, randomUUID());
    const after = await created(randomUUID());
    await expect.poll(counts).toEqual({ inboxCount: 2, domainCount: 0 });
    const consumers = await identityConsumers();
    for (const [name, c] of consumers) {
      if (name.startsWith("identity-counts-")) expect(c.filter).toMatch(/\.(InboxCreated|InboxDeleted|DomainAdded|DomainRemoved)$/);
      else expect(c.filter).not.toContain(`.${MAILBOX_CONTEXT}.`);
    }
    // The creation after it was delivered to its consumer; the message to none.
    expect(consumers.get("identity-counts-inbox-created")!.delivered).toBe(after);
    expect([...consumers.values()].filter((c) => c.filter.includes(`.${MAILBOX_CONTEXT}.`) && c.delivered >= seq).length).toBe(1);
  });

  it("upgrading from the single counter: its consumer and checkpoints deleted, the new consumers replay and count nothing twice", async () => {
    // As an earlier release left the stream and the schema: its consumer and checkpoints, none of the new ones'.
    await s.identity.destroy();
    const mine = [...(await identityConsumers()).keys()].filter((n) => n.startsWith("identity-counts-"));
    expect(mine).toHaveLength(4);
    for (const name of mine) await bus.jsm.consumers.delete(stream, name);
    await bus.jsm.consumers.add(stream, {
      durable_name: RETIRED_COUNTERS,
      ack_policy: AckPolicy.Explicit,
      filter_subject: `${s.iso.prefix}evt.${MAILBOX_CONTEXT}.>`,
    });
    const c = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await c.connect();
    try {
      const schema = s.identityEnv().DB_SCHEMA;
      await c.query(`delete from ${schema}.projection_checkpoint where projection like 'identity-counts-%'`);
      await c.query(`insert into ${schema}.projection_checkpoint (projection, tenant_key, stream_seq, updated_at) values ($1, $2, 1, now())`, [
        RETIRED_COUNTERS,
        tenantId,
      ]);
      await s.startIdentity();
      expect((await identityConsumers()).has(RETIRED_COUNTERS)).toBe(false);
      expect((await c.query(`select count(*)::int as n from ${schema}.projection_checkpoint where projection = $1`, [RETIRED_COUNTERS])).rows[0].n).toBe(0);
    } finally {
      await c.end();
    }
    // The new consumers replayed the stream from its first event (caught up before identity
    // serves): every event was found counted, so the counts are what they were.
    const replayed = await identityConsumers();
    for (const name of mine) expect(replayed.get(name)).toMatchObject({ pending: 0, ackPending: 0 });
    expect(replayed.get("identity-counts-inbox-created")!.delivered).toBeGreaterThan(0);
    expect(await counts()).toEqual({ inboxCount: 2, domainCount: 0 });
  });
});
