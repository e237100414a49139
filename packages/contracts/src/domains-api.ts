import { z } from "zod";
import { DomainName } from "./mailbox-api.ts";
import { PaginationOut, pageFields } from "./pagination.ts";

export const CreateDomainBody = z.object({ domain: DomainName, workspaceId: z.uuid().optional() }).meta({ id: "CreateDomainBody" });

/** The path key of a domain: its id or its name, as Express decoded it (once; never decoded again). */
export const DomainKey = z
  .string()
  .min(1)
  .max(253)
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), "must not contain control characters");
export const DomainRef = z.object({ domain: DomainKey });
export const AddDomainCommand = z.object({ body: z.unknown() });

export const DnsRecordOut = z.object({
  type: z.enum(["MX", "TXT"]),
  name: z.string(),
  value: z.string(),
  priority: z.number().int().nullable(),
  status: z.enum(["pending", "verified"]),
  /** What the record is for: mx, spf, dkim or dmarc. */
  purpose: z.string(),
});

export const Domain = z
  .object({
    id: z.uuid(),
    domain: z.string(),
    status: z.enum(["pending", "verified", "failed"]),
    workspaceId: z.uuid().nullable(),
    dnsRecords: z.array(DnsRecordOut),
    /** The same records under the field names myagentmail's sample client reads. */
    records: z.array(z.object({ type: z.string(), host: z.string(), value: z.string(), priority: z.number().int().optional() })),
    createdAt: z.string(),
    updatedAt: z.string(),
    verifiedAt: z.string().nullable(),
  })
  .meta({ id: "Domain" });
export type Domain = z.infer<typeof Domain>;
/** Domains were listed whole before pages: the default limit (1,000) keeps that answer (a workspace holds at most 100). */
export const ListDomainsQuery = z.object(pageFields(1000, 1000));
export const ListDomainsRequest = z.object({ query: ListDomainsQuery });
export const DomainList = z.object({ domains: z.array(Domain), pagination: PaginationOut });

/** Most custom domains one workspace may add. */
export const MAX_DOMAINS_PER_WORKSPACE = 100;
