import { parseOrThrow } from "@mam/contracts/errors.ts";
import { AddAddressBody, AddAddressCommand, RemoveAddressCommand } from "@mam/contracts/mailbox-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import type { MailboxContext } from "../context.ts";
import { verifiedInWorkspace } from "../read/domains.ts";
import { visibleInbox } from "../read/inboxes.ts";
import { execute, type CommandMeta } from "./execute.ts";
import { idParam } from "./ids.ts";
import { decide, domainNotAvailable, type InboxCommand } from "./inbox-decisions.ts";
import { assertClaimed, claimsOf, loadInbox, tenantOf } from "./inbox-load.ts";
import { quarantineAt } from "./inbox-state.ts";

/** An alias for an inbox; by default it becomes the primary (outbound From) address. */
export async function addAddress(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const cmd = parseOrThrow(AddAddressCommand, raw);
  const body = parseOrThrow(AddAddressBody, cmd.body);
  // Read before the lock: the domain check needs the inbox's workspace (and a stranger gets the 404 first).
  const inbox = await visibleInbox(ctx.db, claims, cmd.inboxId);
  const domain = body.email.slice(body.email.lastIndexOf("@") + 1);
  const custom = domain !== ctx.cfg.MAIL_DOMAIN;
  if (custom && !(await verifiedInWorkspace(ctx.db, inbox.workspace_id, domain))) throw domainNotAvailable(ctx.cfg.MAIL_DOMAIN);
  const command: InboxCommand = {
    type: "AddAddress",
    caller: claims,
    inboxId: inbox.inbox_id,
    address: body.email,
    primary: body.primary,
    maxAddresses: ctx.cfg.MAX_ADDRESSES_PER_INBOX,
    platformDomain: ctx.cfg.MAIL_DOMAIN,
    quarantine: quarantineAt(ctx.clock(), ctx.cfg.MAIL_DOMAIN, ctx.cfg.ADDRESS_QUARANTINE_DAYS),
    reserved: { domain: ctx.cfg.MAIL_DOMAIN, extra: ctx.cfg.RESERVED_LOCAL_PARTS },
  };
  return execute(ctx, inbox.tenant_id, meta, {
    load: async (tx) => {
      const state = await loadInbox(tx, inbox.inbox_id);
      const claims = await claimsOf(tx, [body.email]);
      // The domain read again under the lock (removeDomain takes it too): the check before it may be stale.
      const customDomains = custom && (await verifiedInWorkspace(tx, inbox.workspace_id, domain)) ? { [inbox.workspace_id]: [domain] } : {};
      return { ...state, claims: { ...state.claims, ...claims.claims }, released: claims.released, customDomains };
    },
    decide: (state) => decide(command, state),
    answer: async (tx, _state, events) => {
      if (events.length) await assertClaimed(tx, body.email, inbox.inbox_id);
      return { status: 201, body: { ok: true, address: body.email, isPrimary: body.primary } };
    },
  });
}

/** Removes an alias. The canonical address stays; if the primary goes, the canonical one is primary again. */
export async function removeAddress(ctx: MailboxContext, claims: ScopeClaims, raw: unknown, meta: CommandMeta) {
  const cmd = parseOrThrow(RemoveAddressCommand, raw);
  const inboxId = idParam(cmd.inboxId, "inbox id");
  const command: InboxCommand = { type: "RemoveAddress", caller: claims, inboxId, address: cmd.address.trim().toLowerCase() };
  return execute(ctx, tenantOf(claims), meta, {
    load: (tx) => loadInbox(tx, inboxId),
    decide: (state) => decide(command, state),
    answer: async () => ({ deleted: true, address: command.address }),
  });
}
