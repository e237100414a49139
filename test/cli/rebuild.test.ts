import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { provisionTenant, Stack } from "../support/stack.ts";
import { mam } from "./run-cli.ts";

/**
 * `mam rebuild mailbox` while two mailbox replicas run: the read model, damaged behind the
 * service's back, answers as before once rebuilt from the stream; the progress is printed.
 */
describe("mam rebuild", () => {
  const plans = [{ id: "free", name: "Free", stripePriceId: null, limits: { inboxes: 10, emailsPerMonth: 100, domains: 1 } }];
  const s = new Stack({ logLevel: "warn", mailboxes: 2, billing: true, billingEnv: { BILLING_PLANS: JSON.stringify(plans), BILLING_DEFAULT_PLAN: "free" } });
  let tk: string;
  const inboxes: { id: string; email: string }[] = [];

  async function snapshot() {
    const out: Record<string, unknown> = { inboxes: (await s.api("GET", "/v1/inboxes", { key: tk })).body };
    for (const i of inboxes) {
      for (const p of [`/v1/inboxes/${i.id}`, `/v1/inboxes/${i.id}/messages?limit=100`, `/v1/inboxes/${i.id}/drafts`, `/v1/inboxes/${i.id}/lists`])
        out[p] = (await s.api("GET", p, { key: tk })).body;
    }
    for (const group of ["", "&group=thread"]) out[`inbox${group}`] = (await s.api("GET", `/v1/messages?folder=inbox${group}`, { key: tk })).body;
    out.counts = (await s.api("GET", "/v1/messages/folders/counts", { key: tk })).body;
    return out;
  }

  beforeAll(async () => {
    await s.start();
    tk = (await provisionTenant(s)).key.key;
    for (const u of ["one", "two"]) inboxes.push((await s.api("POST", "/v1/inboxes", { key: tk, body: { username: u } })).body);
    const [one, two] = inboxes as [(typeof inboxes)[0], (typeof inboxes)[0]];
    await s.api("POST", `/v1/inboxes/${one.id}/lists`, { key: tk, body: { name: "VIP" } });
    await s.api("POST", `/v1/inboxes/${one.id}/drafts`, { key: tk, body: { to: two.email, subject: "Later" } });
    const sent = (await s.api("POST", `/v1/inboxes/${one.id}/send`, { key: tk, body: { to: two.email, subject: "Hello", plainBody: "hi", verified: true } }))
      .body;
    await s.api("PATCH", `/v1/inboxes/${one.id}/messages/${sent.id}`, { key: tk, body: { isStarred: true } });
    // Nothing may still be changing when the first snapshot is taken.
    await waitFor(async () => (await s.api("GET", `/v1/inboxes/${two.id}/messages`, { key: tk })).body.messages.length === 1, { timeoutMs: 10_000 });
    await waitFor(
      async () =>
        (await s.api("GET", `/v1/inboxes/${one.id}/messages?direction=outbound`, { key: tk })).body.messages.every(
          (m: { status: string }) => m.status === "delivered",
        ),
      { timeoutMs: 10_000, what: "deliveries settled" },
    );
  });
  afterAll(() => s.stop());

  it("replays the stream into the emptied read model while the replicas run: the same answers, with progress", { timeout: 90_000 }, async () => {
    const before = await snapshot();
    // The read model damaged behind the service's back: only a rebuild brings the rows back.
    const c = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await c.connect();
    await c.query(`delete from ${s.iso.schema("mailbox")}.messages`);
    await c.end();
    expect(await snapshot()).not.toEqual(before);

    const [rebuilt, refused] = await Promise.all([mam(s, ["rebuild", "mailbox"], { MAM_KEY: s.operatorKey }), mam(s, ["rebuild", "mailbox", "--key", tk])]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe("error: Only the operator key (sa_) may do this (FORBIDDEN)\n");
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    // Not on a terminal: progress lines (the stream sequence applied of the last one at the start), the last one complete.
    expect(rebuilt.stderr).toMatch(/rebuilding mailbox-read-model from the stream's first event up to sequence (\d+)/);
    const target = rebuilt.stderr.match(/up to sequence (\d+)/)![1];
    expect(rebuilt.stderr).toMatch(new RegExp(`^mailbox-read-model \\[=+\\] 100% \\| seq ${target}/${target} \\| ETA \\d+s$`, "m"));
    expect(rebuilt.stdout).toMatch(/^mailbox-read-model rebuilt: every event up to sequence \d+ applied/);

    expect(await snapshot()).toEqual(before);
    // Commands are served again, against the rebuilt model: the address taken is still taken.
    expect((await s.api("POST", "/v1/inboxes?strict=true", { key: tk, body: { username: "one" } })).body.existed).toBe(true);
    const status = await mam(s, ["status", "--json"], { MAM_KEY: s.operatorKey });
    expect(status.json.readModels.mailbox).toMatchObject({ projection: "mailbox-read-model", rebuilding: false, pending: 0, ackPending: 0 });
  });

  it("rebuilds billing's read model the same way", { timeout: 60_000 }, async () => {
    const account = async () => {
      const r = await s.api("GET", "/v1/billing", { key: tk });
      return { status: r.status, plan: r.body.plan, limits: r.body.limits, state: r.body.status };
    };
    await waitFor(async () => (await account()).plan !== null, { timeoutMs: 10_000, what: "the tenant on the default plan" });
    const before = await account();
    const c = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
    await c.connect();
    await c.query(`delete from ${s.iso.schema("billing")}.tenant_plans`);
    await c.end();
    expect(await account()).not.toEqual(before);
    const rebuilt = await mam(s, ["rebuild", "billing", "--json"], { MAM_KEY: s.operatorKey });
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(rebuilt.json).toMatchObject({ projection: "billing-read-model", rebuilding: false, pending: 0 });
    expect(await account()).toEqual(before);
  });
});
