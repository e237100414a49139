import { createPrivateKey, type KeyObject } from "node:crypto";
import type { Kysely } from "kysely";
import { perContext, type MailboxContext } from "../context.ts";
import type { MailboxDb } from "../db/schema.ts";
import type { InboxRow } from "../read/inboxes.ts";

/** A DKIM key as signing uses it: parsed once (parsing the PEM costs a good part of an RSA signature). */
interface SigningKey {
  selector: string;
  privateKey: KeyObject;
}

/**
 * The signing keys of each service instance by key_ref ("platform" or a domain's id). A
 * key_ref's row never changes: a domain removed and added again gets a new id and a new
 * key, and whether a custom domain is live is read on every send, so a cached key is never
 * used for a domain that is gone.
 */
const signingKeys = perContext(() => new Map<string, SigningKey>());
const MAX_SIGNING_KEYS = 10_000;

async function signingKey(ctx: MailboxContext, tx: Kysely<MailboxDb>, ref: string): Promise<SigningKey | undefined> {
  const keys = signingKeys(ctx);
  const known = keys.get(ref);
  if (known) return known;
  const row = await tx.selectFrom("dkim_keys").select(["selector", "private_key_pem"]).where("key_ref", "=", ref).executeTakeFirst();
  if (!row) return undefined;
  const key = { selector: row.selector, privateKey: createPrivateKey(row.private_key_pem) };
  if (keys.size >= MAX_SIGNING_KEYS) keys.delete(keys.keys().next().value!);
  keys.set(ref, key);
  return key;
}

/** The key that signs mail from this domain: the platform's, or the workspace's custom domain's. */
export async function dkimFor(ctx: MailboxContext, tx: Kysely<MailboxDb>, inbox: InboxRow, domain: string) {
  let ref = "platform";
  if (domain !== ctx.cfg.MAIL_DOMAIN) {
    const d = await tx
      .selectFrom("domains")
      .select("domain_id")
      .where("workspace_id", "=", inbox.workspace_id)
      .where("domain", "=", domain)
      .where("deleted_at", "is", null)
      .executeTakeFirst();
    if (!d) return undefined;
    ref = d.domain_id;
  }
  const key = await signingKey(ctx, tx, ref);
  return key ? { domainName: domain, keySelector: key.selector, privateKey: key.privateKey } : undefined;
}

/** The key that signs the platform's own mail (MAIL_DOMAIN): failure notices, say. */
export async function platformDkim(ctx: MailboxContext, tx: Kysely<MailboxDb>) {
  const key = await signingKey(ctx, tx, "platform");
  return key ? { domainName: ctx.cfg.MAIL_DOMAIN, keySelector: key.selector, privateKey: key.privateKey } : undefined;
}
