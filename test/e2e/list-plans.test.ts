import { randomUUID } from "node:crypto";
import { type CompiledQuery, type Kysely, sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { keyPageQuery } from "@mam/identity/read/keys.ts";
import { workspacePageQuery } from "@mam/identity/read/workspaces.ts";
import { domainPageQuery } from "@mam/mailbox/read/domains.ts";
import { inboxPageQuery, type InboxRow } from "@mam/mailbox/read/inboxes.ts";
import { entryPageQuery, listPageQuery, type ListRow } from "@mam/mailbox/read/lists.ts";
import { deliveryPageQuery, webhookPageQuery } from "@mam/realtime/webhooks/read.ts";
import { pageOf, type PageRequest } from "@mam/service-kit/keyset.ts";
import { analyze, orderedIndexProblem, planOf } from "@mam/testing/query-plans.ts";
import { Stack } from "../support/stack.ts";

/**
 * Each list outside the mailbox's message views is served by an index in its order, on
 * its first page and on a page after a cursor: seeded by SQL with many tenants (and a big
 * one) so the planner weighs real choices, analyzed, then explained as the read modules
 * build the queries.
 */
describe("list query plans", () => {
  const s = new Stack({ logLevel: "warn", realtime: 1 });
  const tenant = randomUUID();
  const ws = [randomUUID(), randomUUID()];
  const inbox = randomUUID();
  const list = randomUUID();
  const webhook = randomUUID();
  const claims = (workspaces: "*" | string[]) =>
    ({ kind: workspaces === "*" ? "tenant" : "workspace", tenantId: tenant, workspaces, inboxId: null }) as unknown as ScopeClaims & { tenantId: string };
  const first: PageRequest = { limit: 50, offset: 0 };

  /**
   * Rows of 200 other owners (tenants, workspaces, inboxes, ...) beside the big one's, so its
   * rows are a small part of the table, made over the same span of time as theirs.
   */
  const seed = (n: number) => sql`generate_series(1, ${n}) g cross join lateral (select md5('other' || (g % 200))::uuid as other) o`;

  beforeAll(async () => {
    await s.start();
    const idb = s.identity.ctx.db as Kysely<any>;
    await sql`insert into workspaces (workspace_id, tenant_id, name, slug, is_default, created_at)
      select gen_random_uuid(), case when g % 50 = 0 then ${tenant}::uuid else other end, 'w' || g, 'w' || g, false,
             now() - g * interval '1 second' - (random() * interval '1 second')
      from ${seed(20_000)}`.execute(idb);
    await sql`insert into api_keys (workspace_id, key_id, tenant_id, kind, name, prefix, key_hash, created_at, revoked_at)
      select case when g % 10 = 0 then ${ws[0]}::uuid else other end, gen_random_uuid(), ${tenant}::uuid, 'workspace', null, 'wk_x',
             md5(g::text || random()::text), now() - g * interval '1 second', case when g % 7 = 3 then now() end
      from ${seed(20_000)}`.execute(idb);
    await analyze(idb, ["workspaces", "api_keys"]);

    const mdb = s.mailbox!.ctx.db as Kysely<any>;
    await sql`insert into inboxes (workspace_id, inbox_id, tenant_id, username, domain, canonical_email, version, created_at, updated_at, deleted_at)
      select case when g % 10 = 0 then (${sql.val(ws)}::uuid[])[1 + (g / 10) % 2] else other end, gen_random_uuid(),
             case when g % 10 = 0 then ${tenant}::uuid else other end, 'u' || g, 'plans.test', 'u' || g || '@plans.test', 1,
             now() - g * interval '1 second', now(), case when g % 7 = 3 then now() end
      from ${seed(30_000)}`.execute(mdb);
    await sql`insert into domains (workspace_id, domain_id, tenant_id, domain, selector, dkim_public_key, status, records, version, created_at, updated_at, deleted_at)
      select case when g % 10 = 0 then ${ws[0]}::uuid else other end, gen_random_uuid(), case when g % 10 = 0 then ${tenant}::uuid else other end,
             'd' || g || '.plans.test', 's', 'k', 'pending', '[]'::jsonb, 1, now() - g * interval '1 second', now(), case when g % 7 = 3 then now() end
      from ${seed(20_000)}`.execute(mdb);
    await sql`insert into lists (workspace_id, list_id, inbox_id, name, version, created_at, updated_at, deleted_at)
      select ${ws[0]}::uuid, gen_random_uuid(), case when g % 20 = 0 then ${inbox}::uuid else other end, 'l' || g, 1,
             now() - g * interval '1 second', now(), case when g % 7 = 3 then now() end
      from ${seed(20_000)}`.execute(mdb);
    await sql`insert into list_entries (workspace_id, list_id, entry_id, email, created_at)
      select ${ws[0]}::uuid, case when g % 3 = 0 then ${list}::uuid else other end, gen_random_uuid(), 'e' || g || '@plans.test',
             now() - g * interval '1 second'
      from ${seed(30_000)}`.execute(mdb);
    await analyze(mdb, ["inboxes", "domains", "domain_claims", "lists", "list_entries"]);

    const rdb = s.realtimes[0]!.ctx.db as Kysely<any>;
    await sql`insert into webhooks (workspace_id, webhook_id, tenant_id, url, events, is_active, version, created_at, updated_at)
      select case when (g / 40) % 2 = 0 then ${ws[0]}::uuid else ${ws[1]}::uuid end, case when g = 40 then ${webhook}::uuid else gen_random_uuid() end,
             case when g % 40 = 0 then ${tenant}::uuid else other end, 'https://hooks.example.com/' || g, '{message.received}', true, 1,
             now() - g * interval '1 second', now()
      from ${seed(20_000)}`.execute(rdb);
    await sql`insert into webhook_attempts (workspace_id, webhook_id, attempt_id, event_id, event_type, attempt, attempted_at, latency_ms, success)
      select ${ws[1]}::uuid, case when g % 3 = 0 then ${webhook}::uuid else other end, gen_random_uuid(), 'evt_x', 'message.received', 1,
             now() - g * interval '1 second', 1, true
      from ${seed(30_000)}`.execute(rdb);
    await analyze(rdb, ["webhooks", "webhook_health", "webhook_attempts"]);
  }, 120_000);
  afterAll(() => s.stop());

  /** The query's plan on its first page and on the page after its first page's cursor. */
  async function expectServedInOrder<R extends { key_at: string }>(
    db: Kysely<any>,
    table: string,
    list: string,
    build: (req: PageRequest) => { compile(): CompiledQuery; execute(): Promise<R[]> },
    idOf: (r: R) => string,
  ) {
    const rows = await build(first).execute();
    const { nextCursor } = pageOf(list, rows, first.limit, idOf);
    expect(nextCursor, `${list}: the seed fills more than a page`).not.toBeNull();
    for (const req of [first, { ...first, cursor: nextCursor! }]) {
      const plan = await planOf(db, build(req).compile());
      expect(orderedIndexProblem(plan, table), `${list} ${req.cursor ? "after a cursor" : "first page"}: ${JSON.stringify(plan)}`).toBeNull();
    }
  }

  it("identity: a tenant's workspaces and a workspace's keys", async () => {
    const db = s.identity.ctx.db;
    // A wk_ or ak_ key sees one workspace: found by its primary key, no page to order.
    await expectServedInOrder(
      db,
      "workspaces",
      "workspaces",
      (req) => workspacePageQuery(db, tenant, "*", req),
      (r) => r.workspace_id,
    );
    await expectServedInOrder(
      db,
      "api_keys",
      `keys:${ws[0]}`,
      (req) => keyPageQuery(db, ws[0]!, req),
      (r) => r.key_id,
    );
  });

  it("mailbox: inboxes (all, one workspace), domains (tk_ and wk_ scope), an inbox's lists, a list's entries", async () => {
    const db = s.mailbox!.ctx.db;
    await expectServedInOrder(
      db,
      "inboxes",
      "inboxes:*",
      (req) => inboxPageQuery(db, tenant, "*", null, req),
      (r) => r.inbox_id,
    );
    await expectServedInOrder(
      db,
      "inboxes",
      `inboxes:${ws[0]}`,
      (req) => inboxPageQuery(db, tenant, [ws[0]!], null, { ...req, workspace: ws[0] }),
      (r) => r.inbox_id,
    );
    const cutoff = new Date(Date.now() - 7 * 86_400_000);
    await expectServedInOrder(
      db,
      "domains",
      "domains",
      (req) => domainPageQuery(db, claims("*"), cutoff, req),
      (r) => r.domain_id,
    );
    const inboxRow = { workspace_id: ws[0]!, inbox_id: inbox } as InboxRow;
    await expectServedInOrder(
      db,
      "lists",
      `lists:${inbox}`,
      (req) => listPageQuery(db, inboxRow, req),
      (r) => r.list_id,
    );
    const listRow = { workspace_id: ws[0]!, list_id: list } as ListRow;
    await expectServedInOrder(
      db,
      "list_entries",
      `entries:${list}`,
      (req) => entryPageQuery(db, listRow, req),
      (r) => r.entry_id,
    );
  });

  it("realtime: webhooks (tk_ and wk_ scope) and a webhook's deliveries", async () => {
    const db = s.realtimes[0]!.ctx.db;
    await expectServedInOrder(
      db,
      "webhooks",
      "webhooks",
      (req) => webhookPageQuery(db, claims("*"), req),
      (r) => r.webhook_id,
    );
    await expectServedInOrder(
      db,
      "webhooks",
      "webhooks",
      (req) => webhookPageQuery(db, claims([ws[0]!]), req),
      (r) => r.webhook_id,
    );
    const w = { workspace_id: ws[1]!, webhook_id: webhook };
    await expectServedInOrder(
      db,
      "webhook_attempts",
      `deliveries:${webhook}`,
      (req) => deliveryPageQuery(db, w, req),
      (r) => r.attempt_id,
    );
  });
});
