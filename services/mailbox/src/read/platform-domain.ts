import { AppError } from "@mam/contracts/errors.ts";
import type { Domain } from "@mam/contracts/domains-api.ts";
import type { ScopeClaims } from "@mam/contracts/scope.ts";
import { NO_WORKSPACE } from "@mam/service-kit/event-sourcing.ts";
import { ensurePlatformKey } from "../commands/platform-domain.ts";
import type { MailboxContext } from "../context.ts";
import { expectedRecords } from "../dns/records.ts";
import { checkRecords, makeResolver } from "../dns/verify.ts";
import { domainView } from "./domains.ts";

/**
 * The records the operator publishes for MAIL_DOMAIN; `verify` looks them up live. A query:
 * the platform domain is configuration, not a workspace's, and nothing about it is recorded.
 */
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
    {
      domain_id: NO_WORKSPACE,
      domain: ctx.cfg.MAIL_DOMAIN,
      status,
      records,
      created_at: key.created_at,
      updated_at: now,
      verified_at: status === "verified" ? now : null,
    },
    null,
  );
}
