import pg from "pg";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import { rpcSubject } from "@mam/contracts/subjects.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/** What an internal failure knows and a client must never see. */
const CANARY = "sk_live_CANARY0123456789";
const INTERNAL_TEXT = `leaked ${CANARY} from /srv/mam/services/identity/src/secret.ts: SELECT password FROM operators`;
const LEAKS = [CANARY, "/srv/mam", "secret.ts", "SELECT", "password", "stack", "    at ", "ZodError", "invalid_type", "Unexpected token"];

/**
 * An unexpected error reaching the edge is answered 500 `{ error: "Internal error", code:
 * "INTERNAL" }` with the request id, and logged once (error level, with the request id and
 * the stack); its message, stack, SQL and paths stay in the log. Provoked through real
 * routes: a database trigger that fails a write in identity, and a service that answers
 * the gateway with a malformed reply.
 */
describe("an internal error answers a stable 500 that leaks nothing", () => {
  // Identity and a gateway; the mailbox's subjects are answered by this test.
  const s = new Stack({ logLevel: "warn", mailbox: false });
  let key: string;
  let db: pg.Client;
  let nc: NatsConnection | undefined;

  beforeAll(async () => {
    await s.start();
    key = (await provisionTenant(s)).key.key;
    db = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await db.connect();
  }, 60_000);

  afterAll(async () => {
    await nc?.close();
    await db?.end();
    await s.stop();
  });

  const errorsOf = (requestId: string) => s.logs.entries().filter((e) => e.requestId === requestId && (e.level as number) >= 50);

  function expectStableInternal(r: { status: number; body: unknown; headers: Headers }, requestId: string) {
    expect(r.status).toBe(500);
    expect(r.body).toEqual({ error: "Internal error", code: "INTERNAL" });
    expect(r.headers.get("x-request-id")).toBe(requestId);
    const text = JSON.stringify(r.body);
    for (const leak of LEAKS) expect(text).not.toContain(leak);
  }

  it("a service-side failure (a write its database refuses) is INTERNAL; its message and stack stay in the service's log", async () => {
    const schema = s.iso.schema("identity");
    await db.query(`create function ${schema}.refuse_workspace() returns trigger language plpgsql as $$ begin raise exception '${INTERNAL_TEXT}'; end $$`);
    await db.query(`create trigger refuse_workspace before insert on ${schema}.workspaces for each row execute function ${schema}.refuse_workspace()`);
    try {
      const requestId = "internal-error-service";
      const r = await s.api("POST", "/v1/workspaces", { key, body: { name: "Refused" }, headers: { "x-request-id": requestId } });
      expectStableInternal(r, requestId);
      const logged = errorsOf(requestId);
      expect(logged).toHaveLength(1);
      expect(logged[0]!.service).toBe("identity");
      const err = logged[0]!.err as { message: string; stack: string };
      expect(err.message).toContain(CANARY);
      expect(err.stack).toMatch(/\n\s+at /);
    } finally {
      await db.query(`drop trigger refuse_workspace on ${schema}.workspaces`);
    }
    // Not an outage: the same request works once the fault is gone.
    expect((await s.api("POST", "/v1/workspaces", { key, body: { name: "Accepted" } })).status).toBe(201);
  });

  it("a malformed reply reaching the gateway is INTERNAL, logged once by the gateway with its stack", async () => {
    nc = await connect({ servers: s.iso.urls.NATS_URL });
    const subject = rpcSubject(s.iso.prefix, RpcContracts.mailbox.inboxGet.subject);
    const replies = [`{"ok":true,"status":"${INTERNAL_TEXT}"}`, `not json: ${INTERNAL_TEXT}`];
    let next = 0;
    nc.subscribe(subject, { callback: (_err, msg) => void msg.respond(replies[next++ % replies.length]) });
    await nc.flush();
    for (const [i] of replies.entries()) {
      const requestId = `internal-error-reply-${i}`;
      const r = await s.api("GET", "/v1/inboxes/0190a6d5-8a35-7c1e-9f21-5f6b2c9d4e10", { key, headers: { "x-request-id": requestId } });
      expectStableInternal(r, requestId);
      const logged = errorsOf(requestId);
      expect(logged).toHaveLength(1);
      expect(logged[0]!.service).toBe("gateway");
      expect((logged[0]!.err as { stack: string }).stack).toMatch(/\n\s+at /);
    }
  });
});
