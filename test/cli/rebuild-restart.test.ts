import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consumerCaughtUp, streamEnd } from "@mam/bus/consumer.ts";
import { request } from "@mam/bus/rpc-client.ts";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { PrivateNatsServer } from "@mam/testing/nats-server.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/**
 * NATS gone while a rebuild's reset runs: the reset fails (or commits) and the replica cannot
 * pull the read model's events again until NATS is back. It keeps trying; once NATS returns
 * it pulls again, rather than holding the lease and pulling nothing for good.
 */
describe("pulling again after a rebuild's reset, NATS away meanwhile", () => {
  const nats = new PrivateNatsServer();
  let s: Stack;
  let db: pg.Client;
  let nc: NatsConnection | undefined;
  let key: string;
  let probes = 0;
  const schema = () => s.iso.schema("mailbox");

  beforeAll(async () => {
    await nats.start();
    s = new Stack({ logLevel: "warn", natsUrl: nats.url });
    await s.start();
    db = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await db.connect();
    key = (await provisionTenant(s)).key.key;
    expect((await s.api("POST", "/v1/inboxes", { key, body: { username: "before" } })).status).toBeLessThan(300);
  }, 60_000);
  afterAll(async () => {
    await nc?.close();
    await db?.end();
    await s?.stop();
    await nats.stop();
  });

  it("keeps trying until NATS is back, then pulls the read model's events again", { timeout: 150_000 }, async () => {
    // The reset waits on the test's lock of the projection's checkpoint while NATS goes away.
    const blocker = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await blocker.connect();
    await blocker.query("begin");
    await blocker.query(`select 1 from ${schema()}.projection_checkpoint where projection = 'mailbox-read-model' for update`);
    let asked: ReturnType<typeof request> | undefined;
    try {
      // Asked once (`mam rebuild` would ask again once NATS is back: a new reset, which would hide a replica pulling nothing).
      const subject = "svc.mailbox.ops.rebuild.mailbox-read-model";
      asked = request(s.gateways[0]!.ctx.bus, subject, { action: "start", operatorKey: s.operatorKey }, { timeoutMs: 60_000 });
      await waitFor(
        async () =>
          (
            await db.query("select 1 from pg_stat_activity where application_name = $1 and wait_event_type = 'Lock' and query ilike $2", [
              schema(),
              "%delete from%projection_checkpoint%",
            ])
          ).rows.length > 0,
        { timeoutMs: 30_000, what: "the reset waiting" },
      );
      await nats.kill();
    } finally {
      await blocker.query("commit");
      await blocker.end();
    }
    // The reset ends without NATS, and the replica's first try to pull again fails: it says so,
    // or (giving up) the rebuild request fails with it.
    const failedToPull = () =>
      s.logs
        .entries()
        .some((e) => e.msg === "could not pull the read model's events again; retrying" || (/ops\.rebuild/.test(String(e.rpc)) && (e.level as number) >= 40));
    await waitFor(failedToPull, { timeoutMs: 60_000, intervalMs: 200, what: "a failed try to pull again" });
    await nats.start();

    // A command's events reach the read model's consumer, which someone pulls and acknowledges.
    await waitFor(async () => (await s.api("POST", "/v1/inboxes", { key, body: { username: `after${++probes}` } })).status < 300, {
      timeoutMs: 30_000,
      intervalMs: 500,
      what: "commands served",
    });
    nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    const through = await streamEnd({ jsm }, eventsStreamName(s.iso.prefix));
    await waitFor(
      async () => {
        const info = await jsm.consumers.info(eventsStreamName(s.iso.prefix), "mailbox-read-model").catch(() => undefined);
        return !!info && info.num_waiting >= 1 && (await consumerCaughtUp({ jsm }, eventsStreamName(s.iso.prefix), "mailbox-read-model", through));
      },
      { timeoutMs: 60_000, intervalMs: 500, what: "the read model's consumer pulled again, nothing left behind" },
    );
    // Its answer was lost with NATS, or came once the reset was done: either way not waited for before.
    await asked;
  });
});
