import { sql, type Kysely, type Selectable } from "kysely";
import type { z } from "zod";
import { AppError, notFound, parseOrThrow } from "@mam/contracts/errors.ts";
import { IdParam } from "@mam/contracts/identity-api.ts";
import { ListInboxesQuery, type Inbox, type InboxList } from "@mam/contracts/mailbox-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { seesWorkspace } from "@mam/scope/access.ts";
import { CoalescedReads } from "@mam/service-kit/coalesced-reads.ts";
import { NO_WORKSPACE } from "@mam/service-kit/event-sourcing.ts";
import { cursorKeys, keyInstant, pageOf, paginationOf, pastKeys, type PageRequest } from "@mam/service-kit/keyset.ts";
import type { MailboxContext } from "../context.ts";
import type { InboxAddressesTable, InboxesTable, MailboxDb } from "../db/schema.ts";

export type InboxRow = Selectable<InboxesTable>;
type AddressRow = Selectable<InboxAddressesTable>;

const iso = (d: Date | string) => new Date(d).toISOString();

export function toInbox(r: InboxRow, addresses: AddressRow[]): Inbox {
  const ordered = [...addresses].sort(
    (a, b) => Number(b.is_canonical) - Number(a.is_canonical) || iso(a.created_at).localeCompare(iso(b.created_at)) || a.address.localeCompare(b.address),
  );
  return {
    id: r.inbox_id,
    email: ordered.find((a) => a.is_primary)?.address ?? r.canonical_email,
    canonicalEmail: r.canonical_email,
    username: r.username,
    domain: r.domain,
    displayName: r.display_name,
    workspaceId: r.workspace_id,
    addresses: ordered.map((a) => ({ address: a.address, isPrimary: a.is_primary })),
    metadata: r.metadata,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

/** True when the token may see this inbox: its workspace, and for an ak_ key that very inbox. */
export const seesInbox = (c: ScopeClaims, r: InboxPlacement) =>
  seesWorkspace(c, { tenantId: r.tenant_id, workspaceId: r.workspace_id }) && (c.inboxId === null || c.inboxId === r.inbox_id);

/** Where an inbox lives. An inbox never moves: its tenant and workspace are fixed when it is made. */
export type InboxPlacement = Pick<InboxRow, "inbox_id" | "workspace_id" | "tenant_id">;

/** Placements of inboxes seen live, per database (per service instance), the oldest dropped past the bound. */
const placements = new WeakMap<Kysely<MailboxDb>, Map<string, InboxPlacement>>();
const MAX_PLACEMENTS = 50_000;

/** The placement alone, without the rest of an inbox's row. */
const placementOf = (r: InboxPlacement): InboxPlacement => ({ inbox_id: r.inbox_id, workspace_id: r.workspace_id, tenant_id: r.tenant_id });

function rememberPlacement(db: Kysely<MailboxDb>, r: InboxPlacement): void {
  let known = placements.get(db);
  if (!known) placements.set(db, (known = new Map()));
  if (known.has(r.inbox_id)) return;
  if (known.size >= MAX_PLACEMENTS) known.delete(known.keys().next().value!);
  known.set(r.inbox_id, placementOf(r));
}

/** The live inbox if the caller may see it; anything else is the same 404. */
export async function visibleInbox(db: Kysely<MailboxDb>, claims: ScopeClaims, rawId: unknown): Promise<InboxRow> {
  const id = parseOrThrow(IdParam, rawId, "inbox id");
  const r = await db.selectFrom("inboxes").selectAll().where("inbox_id", "=", id).where("deleted_at", "is", null).executeTakeFirst();
  if (!r || !seesInbox(claims, r)) throw notFound("Inbox");
  rememberPlacement(db, r);
  return r;
}

/** An inbox's placement as visiblePlacement gives it: `confirmed` when it was just read live, not remembered. */
export type VisiblePlacement = InboxPlacement & { confirmed: boolean };

/**
 * Where an inbox the caller may see lives, for a read that checks in its own statement that
 * the inbox is still live (see inboxIsLive): from memory when this instance has seen it live
 * before (the scope is checked on the placement all the same), else visibleInbox's statement.
 * An inbox of another tenant, workspace or key is the same 404 either way.
 */
export async function visiblePlacement(db: Kysely<MailboxDb>, claims: ScopeClaims, rawId: unknown): Promise<VisiblePlacement> {
  const id = parseOrThrow(IdParam, rawId, "inbox id");
  const known = placements.get(db)?.get(id);
  if (!known) return { ...placementOf(await visibleInbox(db, claims, id)), confirmed: true };
  if (!seesInbox(claims, known)) throw notFound("Inbox");
  return { ...known, confirmed: false };
}

/** A remembered placement's inbox read again (a 404 once it is deleted); nothing to do for one just read. */
export async function confirmLive(db: Kysely<MailboxDb>, claims: ScopeClaims, p: VisiblePlacement): Promise<void> {
  if (!p.confirmed) await visibleInbox(db, claims, p.inbox_id);
}

/** The inbox is live: a condition checked once per statement (a one-time filter), whatever the rows. */
export const inboxIsLive = (db: Kysely<MailboxDb>, p: InboxPlacement) =>
  sql<boolean>`exists (${db
    .selectFrom("inboxes")
    .select(sql`1`.as("one"))
    .where("inboxes.workspace_id", "=", p.workspace_id)
    .where("inboxes.inbox_id", "=", p.inbox_id)
    .where("inboxes.deleted_at", "is", null)})`;

/** An inbox as a send reads it: with the address its mail goes out from (its primary address, else its canonical one). */
export type SendingInbox = InboxRow & { from_address: string };

/** Live inboxes by id, with the address mail from each is sent from: one statement for them all. */
async function sendingInboxesOf(db: Kysely<MailboxDb>, ids: string[]): Promise<Map<string, SendingInbox | null>> {
  const rows = await db
    .selectFrom("inboxes as i")
    .selectAll("i")
    .select((eb) =>
      eb.fn
        .coalesce(
          eb
            .selectFrom("inbox_addresses as a")
            .select("a.address")
            .whereRef("a.workspace_id", "=", "i.workspace_id")
            .whereRef("a.inbox_id", "=", "i.inbox_id")
            .where("a.is_primary", "=", true)
            .limit(1),
          "i.canonical_email",
        )
        .as("from_address"),
    )
    .where("i.inbox_id", "in", ids)
    .where("i.deleted_at", "is", null)
    .execute();
  const found = new Map<string, SendingInbox | null>(ids.map((id) => [id, null]));
  for (const r of rows) found.set(r.inbox_id, r as SendingInbox);
  return found;
}

/** The sends read at the same moment share a statement (a burst of sends from one inbox, or from many). */
const sendingReads = new WeakMap<Kysely<MailboxDb>, CoalescedReads<string, SendingInbox | null>>();

/**
 * visibleInbox, with the address mail from it is sent from, in the same statement. The pool's
 * only (never a transaction's): a statement begun after the call, shared with the sends that
 * ask at the same moment.
 */
export async function sendingInbox(db: Kysely<MailboxDb>, claims: ScopeClaims, rawId: unknown): Promise<SendingInbox> {
  // Postgres reads a UUID in either case; the answers are matched to their callers by the text.
  const id = parseOrThrow(IdParam, rawId, "inbox id").toLowerCase();
  let reads = sendingReads.get(db);
  if (!reads) sendingReads.set(db, (reads = new CoalescedReads({ idOf: (k) => k, read: (ids) => sendingInboxesOf(db, ids) })));
  const r = await reads.get(id);
  if (!r || !seesInbox(claims, r)) throw notFound("Inbox");
  return r;
}

/** The addresses of these inboxes, found by the primary key (workspace, inbox) whatever workspaces they span. */
export function addressesOf(db: Kysely<MailboxDb>, inboxes: Pick<InboxRow, "workspace_id" | "inbox_id">[]): Promise<AddressRow[]> {
  if (!inboxes.length) return Promise.resolve([]);
  return db
    .selectFrom("inbox_addresses")
    .selectAll()
    .where("workspace_id", "in", [...new Set(inboxes.map((r) => r.workspace_id))])
    .where(
      "inbox_id",
      "in",
      inboxes.map((r) => r.inbox_id),
    )
    .execute();
}

export async function inboxView(db: Kysely<MailboxDb>, r: InboxRow): Promise<Inbox> {
  return toInbox(r, await addressesOf(db, [r]));
}

/** Live inboxes of a tenant, narrowed to some workspaces and, for an ak_ key, one inbox: the scope, whatever a cursor says. */
function scoped(db: Kysely<MailboxDb>, tenantId: string, workspaces: "*" | readonly string[], inboxId: string | null) {
  let q = db.selectFrom("inboxes").where("tenant_id", "=", tenantId).where("deleted_at", "is", null);
  if (workspaces !== "*") q = q.where("workspace_id", "in", workspaces.length ? workspaces : [NO_WORKSPACE]);
  if (inboxId) q = q.where("inbox_id", "=", inboxId);
  return q;
}

/** A cursor names the workspace filter it was given with: another filter's cursor is refused. */
const listOf = (workspace: string | undefined) => `inboxes:${workspace ?? "*"}`;

/** One page (and one row more) in `(created_at, inbox_id)` order, served by `inboxes_live_by_tenant` (one workspace's: `inboxes_live_by_workspace`). */
export function inboxPageQuery(
  db: Kysely<MailboxDb>,
  tenantId: string,
  workspaces: "*" | readonly string[],
  inboxId: string | null,
  req: PageRequest & { workspace?: string | undefined },
) {
  const after = cursorKeys(listOf(req.workspace), req);
  let q = scoped(db, tenantId, workspaces, inboxId).selectAll().select(keyInstant("created_at").as("key_at"));
  q = after ? q.where(pastKeys("created_at", "inbox_id", after)) : q.offset(req.offset);
  return q
    .orderBy("created_at")
    .orderBy("inbox_id")
    .limit(req.limit + 1);
}

/** A tk_ key lists its tenant's inboxes (optionally one workspace's), a wk_ key its workspace's, an ak_ key its own. */
export async function listInboxes(ctx: MailboxContext, claims: ScopeClaims, raw: unknown): Promise<z.input<typeof InboxList>> {
  if (claims.kind === "super_admin" || !claims.tenantId) throw new AppError("FORBIDDEN", "The operator key manages tenants only");
  const req = parseOrThrow(ListInboxesQuery, raw, "query");
  let scope = claims.workspaces;
  if (req.workspace) {
    // Filtering is the tenant key's; a narrower key may only name the workspace it already has.
    if (scope !== "*" && !scope.includes(req.workspace)) throw notFound("Workspace");
    scope = [req.workspace];
  }
  const [rows, total] = await Promise.all([
    inboxPageQuery(ctx.db, claims.tenantId, scope, claims.inboxId, req).execute(),
    scoped(ctx.db, claims.tenantId, scope, claims.inboxId).select(sql<string>`count(*)`.as("n")).executeTakeFirstOrThrow(),
  ]);
  const page = pageOf(listOf(req.workspace), rows, req.limit, (r) => r.inbox_id);
  const addrs = await addressesOf(ctx.db, page.rows);
  return {
    inboxes: page.rows.map((r) =>
      toInbox(
        r,
        addrs.filter((a) => a.inbox_id === r.inbox_id),
      ),
    ),
    pagination: paginationOf(req, Number(total.n), page.nextCursor),
  };
}

export async function getInbox(ctx: MailboxContext, claims: ScopeClaims, id: unknown): Promise<Inbox> {
  return inboxView(ctx.db, await visibleInbox(ctx.db, claims, id));
}
