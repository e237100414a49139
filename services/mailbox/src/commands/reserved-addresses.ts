import { AppError } from "@mam/contracts/errors.ts";
import { BOUNCE_LOCAL_PREFIX } from "@mam/contracts/ingest.ts";

/**
 * Role and system local parts of the platform domain: their holder could obtain TLS
 * certificates for the domain (CA e-mail validation) or receive its abuse reports. RFC 2142
 * mailbox names, then what mail systems and certificate authorities treat the same way.
 */
export const BUILT_IN_RESERVED: readonly string[] = [
  // RFC 2142
  "info",
  "marketing",
  "sales",
  "support",
  "abuse",
  "noc",
  "security",
  "postmaster",
  "hostmaster",
  "usenet",
  "news",
  "webmaster",
  "www",
  "uucp",
  "ftp",
  // systems and CA validation
  "mailer-daemon",
  "root",
  "noreply",
  "no-reply",
  "admin",
  "administrator",
  "ssl-admin",
];

/** Prefixes of local parts the platform itself sends from (its return paths). */
const RESERVED_PREFIXES: readonly string[] = [BOUNCE_LOCAL_PREFIX];

export interface ReservedPolicy {
  /** The platform's own domain (MAIL_DOMAIN): only its addresses are reserved; a tenant's custom domain is its own business. */
  domain: string;
  /** RESERVED_LOCAL_PARTS, lower case. */
  extra: readonly string[];
}

/** Whether `address` is one the platform keeps for itself. */
export function isReserved(address: string, policy: ReservedPolicy): boolean {
  const at = address.lastIndexOf("@");
  if (at < 0 || address.slice(at + 1).toLowerCase() !== policy.domain.toLowerCase()) return false;
  const local = address.slice(0, at).toLowerCase();
  return BUILT_IN_RESERVED.includes(local) || policy.extra.includes(local) || RESERVED_PREFIXES.some((p) => local.startsWith(p));
}

/** Refuses a reserved address, naming the field the caller gave it in. */
export function refuseReserved(address: string, policy: ReservedPolicy, field: "username" | "email"): void {
  if (!isReserved(address, policy)) return;
  const local = address.slice(0, address.lastIndexOf("@"));
  throw new AppError("VALIDATION_ERROR", `"${local}" is reserved on ${policy.domain}: role and system addresses belong to the platform`, [
    { path: field, message: "reserved for the platform" },
  ]);
}
