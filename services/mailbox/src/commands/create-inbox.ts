import type { Kysely } from "kysely";
import { AppError, parseOrThrow } from "@mam/contracts/errors.ts";
import { CreateInboxBody, CreateInboxCommand, CreateInboxQuery, type Inbox } from "@mam/contracts/mailbox-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { slugify } from "@mam/contracts/slug.ts";
import { Rpc } from "@mam/contracts/subjects.ts";
import { seesWorkspace } from "@mam/scope/access.ts";
import type { MailboxContext } from "../context.ts";
import type { MailboxDb } from "../db/schema.ts";
import { claimOf, inboxView, tryClaim } from "../read/inboxes.ts";
import { execute, type CommandMeta } from "./execute.ts";
import { askIdentity } from "./identity-client.ts";
import { targetWorkspace, type Caller } from "./target-workspace.ts";
import { verifiedInWorkspace } from "../read/domains.ts";

/** `name`, then `name1` … `name99`, as the reference's allocation rule says. */
export const MAX_FALLBACK = 99;

type Created = { status: 201 | 200; body: Inbox & { apiKey?: string; existed: boolean } };

/**
 * Creates an inbox, or returns the caller's own inbox at that address (200, `existed`).
 * An address owned elsewhere falls back to `name1` … `name99` unless `strict`.
 */
export async function createInbox(ctx: MailboxContext, caller: Caller, raw: unknown, meta: CommandMeta): Promise<Created> {
  const { claims } = caller;
  if (claims.kind !== "tenant" && claims.kind !== "workspace") throw new AppError("FORBIDDEN", "Only tk_ and wk_ keys can create inboxes");
  const cmd = parseOrThrow(CreateInboxCommand, raw);
  const body = parseOrThrow(CreateInboxBody, cmd.body);
  const { strict } = parseOrThrow(CreateInboxQuery, cmd.query ?? {}, "query");
  const ws = await targetWorkspace(ctx, caller, body.workspaceId);
  const domain = body.domain ?? ctx.cfg.MAIL_DOMAIN;
  if (domain !== ctx.cfg.MAIL_DOMAIN && !(await verifiedInWorkspace(ctx.db, ws.id, domain))) {
    throw new AppError("VALIDATION_ERROR", `domain must be ${ctx.cfg.MAIL_DOMAIN} or a verified custom domain of this workspace`, [
      { path: "domain", message: "not a domain of this workspace" },
    ]);
  }
  const base =
    body.username ??
    slugify((await askIdentity<{ name: string }>(ctx, Rpc.identity.tenantGet, {}, caller)).name, "agent", 60);
  const inboxId = ctx.newId();
  const owner = { tenant_id: ws.tenantId, workspace_id: ws.id, inbox_id: inboxId };

  let outcome: { existing: string } | { username: string; address: string; apiKey: string } | undefined;
  return execute(
    ctx,
    ws.tenantId,
    meta,
    async (tx) => {
      outcome = await allocate(tx, caller, base, domain, owner, strict);
      if ("existing" in outcome) return [];
      const key = await askIdentity<{ key: string }>(ctx, Rpc.identity.keyIssueForInbox, { workspaceId: ws.id, inboxId }, caller);
      outcome.apiKey = key.key;
      return [
        {
          event: {
            type: "InboxCreated",
            schemaVersion: 1,
            data: {
              inboxId,
              tenantId: ws.tenantId,
              workspaceId: ws.id,
              username: outcome.username,
              domain,
              address: outcome.address,
              displayName: body.displayName ?? null,
              metadata: body.metadata ?? {},
            },
          },
          tenantId: ws.tenantId,
          workspaceId: ws.id,
          aggregateId: inboxId,
          aggregateVersion: 1,
        },
      ];
    },
    async (tx) => {
      const o = outcome!;
      const id = "existing" in o ? o.existing : inboxId;
      const row = (await tx.selectFrom("inboxes").selectAll().where("inbox_id", "=", id).executeTakeFirstOrThrow());
      const view = await inboxView(tx, row);
      return "existing" in o
        ? { status: 200 as const, body: { ...view, existed: true } }
        : { status: 201 as const, body: { ...view, apiKey: o.apiKey, existed: false } };
    },
  );
}

async function allocate(
  tx: Kysely<MailboxDb>,
  caller: Caller,
  base: string,
  domain: string,
  owner: { tenant_id: string; workspace_id: string; inbox_id: string },
  strict: boolean,
): Promise<{ existing: string } | { username: string; address: string; apiKey: string }> {
  for (let n = 0; n <= MAX_FALLBACK; n++) {
    const username = n === 0 ? base : `${base.slice(0, 64 - String(n).length)}${n}`;
    const address = `${username}@${domain}`;
    if (await tryClaim(tx, address, owner)) return { username, address, apiKey: "" };
    const holder = await claimOf(tx, address);
    // The caller's own inbox at this name (or at a fallback it was given before): asking again returns it.
    if (holder && holder.tenant_id === caller.claims.tenantId && seesWorkspace(caller.claims, { tenantId: holder.tenant_id, workspaceId: holder.workspace_id })) {
      return { existing: holder.inbox_id };
    }
    if (strict) throw new AppError("USERNAME_TAKEN", `The username "${username}" is taken on ${domain}`);
  }
  throw new AppError("USERNAME_TAKEN", `"${base}" and ${base}1 … ${base}${MAX_FALLBACK} are all taken on ${domain}`);
}
