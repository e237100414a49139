import type { Kysely } from "kysely";
import { AppError, parseOrThrow } from "@mam/contracts/errors.ts";
import { CreateInboxBody, CreateInboxCommand, CreateInboxQuery, type Inbox } from "@mam/contracts/mailbox-api.ts";
import { slugify } from "@mam/contracts/slug.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import type { MailboxContext } from "../context.ts";
import type { MailboxDb } from "../db/schema.ts";
import { verifiedInWorkspace } from "../read/domains.ts";
import { inboxView } from "../read/inboxes.ts";
import { allocate, candidates, decide, notAWorkspaceDomain, refusal, type CreateInbox } from "./create-inbox-decision.ts";
import { execute, type CommandMeta } from "./execute.ts";
import { askIdentity } from "./identity-client.ts";
import { assertClaimed, claimsOf, isClosed } from "./inbox-load.ts";
import { quarantineAt } from "./inbox-state.ts";
import { refuseReserved } from "./reserved-addresses.ts";
import { targetWorkspace, type Caller } from "./target-workspace.ts";

export { MAX_FALLBACK } from "./create-inbox-decision.ts";

type Created = { status: 201 | 200; body: Inbox & { apiKey?: string; existed: boolean } };

/**
 * Creates an inbox, or returns the caller's own inbox at that address (200, `existed`).
 * An address owned elsewhere falls back to `name1` … `name99` unless `strict`.
 *
 * Every remote call happens before the tenant's lock: the workspace, the tenant's name,
 * and the inbox's ak_ key, asked of identity only once a lockless probe of the addresses
 * says a new inbox is likely. The lock then covers reads, the decision and the writes.
 */
export async function createInbox(ctx: MailboxContext, caller: Caller, raw: unknown, meta: CommandMeta): Promise<Created> {
  const command = await commandOf(ctx, caller, raw);

  // A lockless look at the candidates answers what is known already (a refusal, the caller's
  // own inbox) without issuing a key; the decision under the lock has the last word.
  const probe = allocate(command, await claimsOf(ctx.db, addressesOf(command)));
  if (probe.kind === "taken" || probe.kind === "held" || probe.kind === "exhausted") throw refusal(command, probe);
  if (probe.kind === "existing") {
    const view = await liveInboxView(ctx.db, probe.inboxId);
    if (view) return { status: 200, body: { ...view, existed: true } };
  }

  const key = await askIdentity(ctx, RpcContracts.identity.keyIssueForInbox, { workspaceId: command.workspaceId, inboxId: command.inboxId }, caller);
  let reply: Created | undefined;
  try {
    reply = await execute(ctx, command.tenantId, meta, {
      load: async (tx) => {
        const state = await claimsOf(tx, addressesOf(command));
        if (await isClosed(tx, command.workspaceId)) state.closed![command.workspaceId] = true;
        // Read again under the lock (removeDomain takes it too): the check before it may be stale.
        if (command.domain !== command.platformDomain && (await verifiedInWorkspace(tx, command.workspaceId, command.domain))) {
          state.customDomains = { [command.workspaceId]: [command.domain] };
        }
        return state;
      },
      decide: (state) => decide(command, state),
      answer: async (tx, state) => {
        const pick = allocate(command, state);
        if (pick.kind === "existing") return { status: 200 as const, body: { ...(await inboxView(tx, await inboxRow(tx, pick.inboxId))), existed: true } };
        if (pick.kind === "new") await assertClaimed(tx, pick.address, command.inboxId);
        const view = await inboxView(tx, await inboxRow(tx, command.inboxId));
        return { status: 201 as const, body: { ...view, apiKey: key.key, existed: false } };
      },
    });
    return reply;
  } finally {
    // Another request won a race since the probe, or the command failed: the key was issued
    // for an inbox that does not exist and its plaintext was shown to no one (it is only ever
    // in a 201). Revoking it keeps identity's list of keys honest.
    if (reply?.status !== 201) await discardKey(ctx, caller, command.workspaceId, key.id);
  }
}

/** The command, with everything asked of identity (the workspace, the tenant's name) before any lock. */
async function commandOf(ctx: MailboxContext, caller: Caller, raw: unknown): Promise<CreateInbox> {
  const { claims } = caller;
  if (claims.kind !== "tenant" && claims.kind !== "workspace") throw new AppError("FORBIDDEN", "Only tk_ and wk_ keys can create inboxes");
  const cmd = parseOrThrow(CreateInboxCommand, raw);
  const body = parseOrThrow(CreateInboxBody, cmd.body);
  const { strict } = parseOrThrow(CreateInboxQuery, cmd.query ?? {}, "query");
  const ws = await targetWorkspace(ctx, caller, body.workspaceId);
  const domain = body.domain ?? ctx.cfg.MAIL_DOMAIN;
  // Before any key is issued; the decision checks again under the lock.
  if (domain !== ctx.cfg.MAIL_DOMAIN && !(await verifiedInWorkspace(ctx.db, ws.id, domain))) throw notAWorkspaceDomain(ctx.cfg.MAIL_DOMAIN);
  const base = body.username ?? slugify((await askIdentity(ctx, RpcContracts.identity.tenantGet, {}, caller)).name, "agent", 60);
  const reserved = { domain: ctx.cfg.MAIL_DOMAIN, extra: ctx.cfg.RESERVED_LOCAL_PARTS };
  // Before any key is issued; the decision says it again. A name derived falls back instead.
  if (body.username !== undefined) refuseReserved(`${base}@${domain}`, reserved, "username");
  return {
    caller: claims,
    inboxId: ctx.newId(),
    tenantId: ws.tenantId,
    workspaceId: ws.id,
    base,
    derived: body.username === undefined,
    domain,
    platformDomain: ctx.cfg.MAIL_DOMAIN,
    strict,
    displayName: body.displayName ?? null,
    metadata: body.metadata ?? {},
    quarantine: quarantineAt(ctx.clock(), ctx.cfg.MAIL_DOMAIN, ctx.cfg.ADDRESS_QUARANTINE_DAYS),
    reserved,
  };
}

const addressesOf = (cmd: CreateInbox) => candidates(cmd).map((c) => c.address);

function inboxRow(db: Kysely<MailboxDb>, inboxId: string) {
  return db.selectFrom("inboxes").selectAll().where("inbox_id", "=", inboxId).executeTakeFirstOrThrow();
}

async function liveInboxView(db: Kysely<MailboxDb>, inboxId: string): Promise<Inbox | undefined> {
  const row = await db.selectFrom("inboxes").selectAll().where("inbox_id", "=", inboxId).where("deleted_at", "is", null).executeTakeFirst();
  return row && inboxView(db, row);
}

/** Best effort: a key left active grants an inbox that does not exist, and nobody holds its plaintext. */
async function discardKey(ctx: MailboxContext, caller: Caller, workspaceId: string, keyId: string): Promise<void> {
  await askIdentity(ctx, RpcContracts.identity.keyDiscardForInbox, { workspaceId, keyId }, caller).catch((err: unknown) =>
    ctx.logger.warn({ err, keyId }, "could not revoke an unused inbox key"),
  );
}
