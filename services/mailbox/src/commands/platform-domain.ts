import type { Kysely } from "kysely";
import { AppError } from "@mam/contracts/errors.ts";
import type { Domain } from "@mam/contracts/domains-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { NO_WORKSPACE } from "@mam/service-kit/event-sourcing.ts";
import type { MailboxContext } from "../context.ts";
import type { MailboxDb } from "../db/schema.ts";
import { expectedRecords, newDkimKey } from "../dns/records.ts";
import { checkRecords, makeResolver } from "../dns/verify.ts";
import { domainView } from "../read/domains.ts";

const PLATFORM = "platform";

/** The platform domain's DKIM key: created once by whichever replica starts first. */
export async function ensurePlatformKey(db: Kysely<MailboxDb>, selector: string, now: Date) {
  const existing = await db.selectFrom("dkim_keys").selectAll().where("key_ref", "=", PLATFORM).executeTakeFirst();
  if (existing) return existing;
  const key = await newDkimKey(selector);
  await db
    .insertInto("dkim_keys")
    .values({ key_ref: PLATFORM, selector: key.selector, private_key_pem: key.privateKeyPem, public_key: key.publicKey, created_at: now })
    .onConflict((oc) => oc.doNothing())
    .execute();
  return db.selectFrom("dkim_keys").selectAll().where("key_ref", "=", PLATFORM).executeTakeFirstOrThrow();
}

/** The records the operator publishes for MAIL_DOMAIN; `verify` looks them up live. */
export async function platformDomain(ctx: MailboxContext, claims: ScopeClaims, verify: boolean): Promise<Domain> {
  if (claims.kind !== "super_admin") throw new AppError("FORBIDDEN", "Only the operator key (sa_) reads the platform domain");
  const key = await ensurePlatformKey(ctx.db, ctx.cfg.DKIM_SELECTOR, ctx.clock());
  let records = expectedRecords(ctx.cfg, ctx.cfg.MAIL_DOMAIN, { selector: key.selector, publicKey: key.public_key });
  let status: Domain["status"] = "pending";
  if (verify) {
    const checked = await checkRecords(makeResolver(ctx.cfg.DNS_SERVERS), records);
    records = checked.records;
    status = checked.verified ? "verified" : "pending";
  }
  const now = ctx.clock();
  return domainView(
    { domain_id: NO_WORKSPACE, domain: ctx.cfg.MAIL_DOMAIN, status, records, created_at: key.created_at, updated_at: now, verified_at: status === "verified" ? now : null },
    null,
  );
}
