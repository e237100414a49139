import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { PrivateNatsServer } from "@mam/testing/nats-server.ts";
import { PrivatePostgresServer } from "@mam/testing/postgres-server.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

type Call = { method: "GET" | "POST"; path: string; body?: () => unknown; ok: number };

/**
 * A dependency outage is not a bug: while the services' Postgres (or everyone's NATS) is
 * gone, reads and writes through the API answer 503 UNAVAILABLE with Retry-After, never a
 * 500; once it is back the same requests succeed, with nothing restarted. Identity, the
 * mailbox and the gateway run on a private Postgres and a private NATS, the only servers a
 * test may kill.
 */
describe("a dependency outage answers 503 UNAVAILABLE and passes without a restart", () => {
  const postgres = new PrivatePostgresServer();
  const nats = new PrivateNatsServer();
  let s: Stack;
  let key: string;
  let calls: Call[];
  let n = 0;

  beforeAll(async () => {
    await Promise.all([postgres.start(), nats.start()]);
    s = new Stack({ logLevel: "silent", natsUrl: nats.url });
    s.iso.env.DATABASE_URL = postgres.url;
    await s.start();
    const t = await provisionTenant(s);
    key = t.key.key;
    const inbox = (await s.api("POST", "/v1/inboxes", { key, body: { username: "steady" } })).body;
    calls = [
      { method: "GET", path: "/v1/workspaces", ok: 200 },
      { method: "GET", path: `/v1/inboxes/${inbox.id}`, ok: 200 },
      { method: "POST", path: "/v1/inboxes", body: () => ({ username: `during-${++n}` }), ok: 201 },
      { method: "POST", path: "/v1/workspaces", body: () => ({ name: `During ${++n}` }), ok: 201 },
    ];
  }, 60_000);

  afterAll(async () => {
    await s?.stop();
    await Promise.all([postgres.destroy(), nats.stop()]);
  });

  const send = (c: Call) => s.api(c.method, c.path, { key, body: c.body?.() });

  /** Until the call answers `status`; whatever it answers meanwhile is never a 500. */
  async function until(c: Call, status: number, what: string) {
    let last: Awaited<ReturnType<typeof send>> | undefined;
    await waitFor(
      async () => {
        last = await send(c);
        expect(last.status, `${c.method} ${c.path}: ${JSON.stringify(last.body)}`).not.toBe(500);
        return last.status === status;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: `${c.method} ${c.path} ${what}` },
    );
    return last!;
  }

  async function expectUnavailable() {
    for (const c of calls) {
      const r = await until(c, 503, "answering 503");
      expect(r.body).toEqual({ error: expect.any(String), code: "UNAVAILABLE" });
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(r.headers.get("x-request-id")).toBeTruthy();
    }
  }

  async function expectRecovered() {
    for (const c of calls) await until(c, c.ok, "working again");
  }

  it("Postgres killed: 503 UNAVAILABLE with Retry-After; started again: 2xx, nothing restarted", async () => {
    for (const c of calls) expect((await send(c)).status).toBe(c.ok);
    await postgres.kill9();
    await expectUnavailable();
    await postgres.start();
    await expectRecovered();
  }, 60_000);

  it("NATS killed: the gateway answers 503 UNAVAILABLE with Retry-After; started again: 2xx", async () => {
    await nats.kill();
    await expectUnavailable();
    await nats.start();
    await expectRecovered();
  }, 60_000);
});
