import { type Kysely, sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MailboxDb } from "@mam/mailbox/db/schema.ts";
import { refreshThreads } from "@mam/mailbox/projections/thread-folders.ts";
import { draftsQuery } from "@mam/mailbox/read/drafts.ts";
import type { InboxRow } from "@mam/mailbox/read/inboxes.ts";
import { countsQuery, type Folder, flatViewQuery, type PageAt, threadViewQuery } from "@mam/mailbox/read/mailbox-view.ts";
import { inboxMessagesQuery, threadQuery } from "@mam/mailbox/read/message-views.ts";
import type { ViewScope } from "@mam/mailbox/read/view-scope.ts";
import { analyze, nodesOf, orderedIndexProblem, planOf } from "@mam/testing/query-plans.ts";
import { Stack } from "../support/stack.ts";

const FOLDERS: Folder[] = ["inbox", "sent", "starred", "archived", "trash"];
const INBOXES = 400;
const MESSAGES = 40_000;

/**
 * The inbox (its number) of the k-th thread: every other thread is the big tenant's, a
 * quarter of those in one busy inbox (u10), the rest over its 40 inboxes; the others over
 * the other tenants' inboxes (numbers not divisible by 10).
 */
const inboxOfThread = (k: ReturnType<typeof sql>) =>
  sql`(case when ${k} % 2 = 0 then case when ${k} % 8 = 0 then 10 else 10 * (1 + (${k} / 2) % 40) end else (${k} % ${INBOXES}) / 10 * 10 + 1 + ${k} % 9 end)`;

/**
 * The mailbox's message lists are served by an index in their order, for every kind of
 * scope and folder, on a first page and after a cursor; folder counts never read a message.
 * Seeded by SQL (a big tenant's 4 workspaces beside 200 other tenants, mail over the same
 * span of time), the thread rows and counters made by the projection's own function,
 * analyzed, then explained as the read modules build the queries.
 */
describe("mailbox list query plans", () => {
  const s = new Stack({ logLevel: "warn" });
  let db: Kysely<MailboxDb>;
  const tenant = "00000000-0000-4000-8000-00000000000a";
  const ws = [1, 2, 3, 4].map((n) => `00000000-0000-4000-8000-00000000010${n}`);
  let inbox: InboxRow;
  let threadId: string;
  const first: PageAt = { limit: 20, offset: 0, after: undefined };
  const later: PageAt = { limit: 20, offset: 0, after: { at: "2026-11-30T12:00:00.123456Z", id: "00000000-0000-4000-8000-0000000000ff" } };

  beforeAll(async () => {
    await s.start();
    db = s.mailbox!.ctx.db;
    // Every tenth inbox is the big tenant's (in one of its 4 workspaces); the others belong to 200 other tenants.
    await sql`insert into inboxes (workspace_id, inbox_id, tenant_id, username, domain, canonical_email, version, created_at, updated_at, deleted_at)
      select case when i % 10 = 0 then (${sql.val(ws)}::uuid[])[1 + (i / 10) % 4] else md5('w' || (i % 200))::uuid end,
             md5('i' || i)::uuid, case when i % 10 = 0 then ${tenant}::uuid else md5('t' || (i % 200))::uuid end,
             'u' || i, 'plans.test', 'u' || i || '@plans.test', 1, now(), now(), case when i % 37 = 5 then now() end
      from generate_series(1, ${INBOXES}) i`.execute(db);
    // Threads of three messages in one inbox, half of them the big tenant's; both directions, some starred, archived, deleted, read.
    await sql`insert into messages (workspace_id, message_id, inbox_id, tenant_id, thread_id, direction, status, from_address, to_addresses, cc_addresses,
        bcc_addresses, subject, preview, raw_hash, raw_size, message_id_header, "references", attachments, labels, is_read, is_starred, is_archived,
        version, created_at, updated_at, deleted_at)
      select i.workspace_id, gen_random_uuid(), i.inbox_id, i.tenant_id, md5('th' || (g / 3))::uuid,
             case when g % 3 = 0 then 'outbound' else 'inbound' end, 'received', 'x@example.com', '[]', '[]', '[]', 's', 'p', 'h', 1, '<' || g || '@x>',
             '[]', '[]', '[]', g % 2 = 0, g % 13 = 0, g % 11 = 0, 1, now() - g * interval '1 second', now(), case when g % 17 = 0 then now() end
      from generate_series(1, ${MESSAGES}) g join inboxes i on i.inbox_id = md5('i' || ${inboxOfThread(sql`g / 3`)})::uuid`.execute(db);
    await sql`insert into drafts (workspace_id, draft_id, inbox_id, fields, version, created_at, updated_at, deleted_at)
      select i.workspace_id, gen_random_uuid(), i.inbox_id, '{}', 1, now() - g * interval '1 second', now(), case when g % 7 = 0 then now() end
      from generate_series(1, 20000) g join inboxes i on i.inbox_id = md5('i' || ${inboxOfThread(sql`g`)})::uuid`.execute(db);
    const threads = await db.selectFrom("messages").select(["workspace_id", "inbox_id", "thread_id"]).distinct().execute();
    await db.transaction().execute((tx) => refreshThreads(tx, threads));
    await analyze(db, ["inboxes", "messages", "drafts", "thread_folders", "folder_counts"]);
    inbox = await db.selectFrom("inboxes").selectAll().where("username", "=", "u10").executeTakeFirstOrThrow();
    threadId = (await db.selectFrom("messages").select("thread_id").where("inbox_id", "=", inbox.inbox_id).executeTakeFirstOrThrow()).thread_id;
  }, 120_000);
  afterAll(() => s.stop());

  const scopes: [string, () => ViewScope][] = [
    ["an inbox (ak_ key, or inboxId)", () => ({ kind: "inbox", workspaceId: inbox.workspace_id, inboxId: inbox.inbox_id })],
    ["a workspace (wk_ key)", () => ({ kind: "workspace", workspaceId: ws[0]! })],
    ["the tenant (tk_ key)", () => ({ kind: "tenant", tenantId: tenant, workspaces: "*" })],
    ["some of the tenant's workspaces", () => ({ kind: "tenant", tenantId: tenant, workspaces: ws.slice(0, 2) })],
  ];

  it("the seed is what the plans are judged on: the thread rows and counters hold every message", async () => {
    const counted = await db
      .selectFrom("folder_counts")
      .select((eb) => eb.fn.sum<string>("total").as("n"))
      .where("folder", "in", ["inbound", "sent"])
      .executeTakeFirstOrThrow();
    const live = await db
      .selectFrom("messages")
      .select((eb) => eb.fn.countAll<string>().as("n"))
      .where("deleted_at", "is", null)
      .executeTakeFirstOrThrow();
    expect(Number(counted.n)).toBe(Number(live.n));
  });

  for (const [name, scope] of scopes) {
    it(`folder view and group=thread of ${name}: an index in order, every folder, first page and after a cursor`, async () => {
      for (const folder of FOLDERS) {
        for (const page of [first, later]) {
          const flat = await planOf(db, flatViewQuery(db, scope(), folder, page).compile());
          expect(orderedIndexProblem(flat, "messages"), `${folder} flat ${JSON.stringify(flat)}`).toBeNull();
          const byThread = await planOf(db, threadViewQuery(db, scope(), folder, page).compile());
          expect(orderedIndexProblem(byThread, "thread_folders"), `${folder} by thread ${JSON.stringify(byThread)}`).toBeNull();
        }
      }
    });
    it(`folder counts of ${name} read counters, never a message`, async () => {
      const plan = await planOf(db, countsQuery(db, scope()).compile());
      const tables = nodesOf(plan).map((n) => n["Relation Name"]);
      expect(tables).toContain("folder_counts");
      expect(tables).not.toContain("messages");
    });
  }

  it("an inbox's messages (both directions, or one), its drafts, and a thread: an index in order", async () => {
    for (const direction of [undefined, "inbound", "outbound"] as const) {
      for (const page of [first, later]) {
        const plan = await planOf(db, inboxMessagesQuery(db, inbox, direction, page).compile());
        expect(orderedIndexProblem(plan, "messages"), `${direction} ${JSON.stringify(plan)}`).toBeNull();
      }
    }
    for (const page of [first, later]) {
      const plan = await planOf(db, draftsQuery(db, inbox, page).compile());
      expect(orderedIndexProblem(plan, "drafts"), JSON.stringify(plan)).toBeNull();
    }
    const plan = await planOf(db, threadQuery(db, inbox, threadId).compile());
    expect(orderedIndexProblem(plan, "messages"), JSON.stringify(plan)).toBeNull();
  });
});
