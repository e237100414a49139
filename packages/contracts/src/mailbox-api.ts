import { z } from "zod";
import { AppError } from "./errors.ts";
import { PaginationOut, pageFields } from "./pagination.ts";

const noControl = (s: string) => !/[\u0000-\u001f\u007f]/.test(s);

/** Lowercase letters, digits, `.`, `-`, `_`; starts and ends with a letter or digit. */
export const Username = z
  .string()
  .trim()
  .toLowerCase()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$/, "must be lowercase letters, digits, '.', '-' or '_', starting and ending with a letter or digit");

export const DomainName = z
  .string()
  .trim()
  .toLowerCase()
  .max(253)
  .regex(/^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/, "must be a domain name");

/** An email address as we accept it: ASCII local part, no quoting, no CR/LF, at most 254 characters. */
export const EmailAddress = z
  .string()
  .trim()
  .toLowerCase()
  .max(254)
  .regex(
    /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/,
    "must be an email address",
  );

export const DisplayName = z.string().trim().max(200).refine(noControl, "must not contain control characters");

/** Every string inside (keys too) is one jsonb can hold: no NUL, no unpaired surrogate. */
function storable(v: unknown): boolean {
  if (typeof v === "string") return !v.includes("\u0000") && v.isWellFormed();
  if (Array.isArray(v)) return v.every(storable);
  if (v && typeof v === "object") return Object.entries(v).every(([k, x]) => storable(k) && storable(x));
  return true;
}

/** Free-form metadata, bounded: at most 16 KiB once serialised. */
export const Metadata = z
  .record(z.string().max(200), z.unknown())
  .refine((m) => JSON.stringify(m).length <= 16_384, "must be at most 16 KiB as JSON")
  // Stored as jsonb, which cannot hold NUL.
  .refine(storable, "must not contain NUL characters or unpaired surrogates");

/** RFC 7396: keys given replace theirs, objects merge key by key, null removes a key. */
function mergePatch(target: unknown, patch: unknown): unknown {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(patch)) return patch;
  // A Map, then own properties: a key such as "__proto__" is a key like any other.
  const out = new Map(Object.entries(isObject(target) ? target : {}));
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) out.delete(k);
    else out.set(k, mergePatch(out.get(k), v));
  }
  return Object.fromEntries(out);
}

/**
 * A PATCH's metadata applied to what an inbox or a list entry has, as a JSON merge patch
 * (RFC 7396: PATCH is merge-style). Refused when the result would pass Metadata's bound.
 */
export function mergeMetadata(current: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const merged = mergePatch(current, patch) as Record<string, unknown>;
  const r = Metadata.safeParse(merged);
  if (!r.success) {
    const message = r.error.issues[0]?.message ?? "invalid";
    throw new AppError("VALIDATION_ERROR", `metadata, merged with what is there, ${message}`, [{ path: "metadata", message }]);
  }
  return merged;
}

export const CreateInboxBody = z
  .object({
    username: Username.optional().meta({
      description:
        "Role and system names of the platform domain (postmaster, abuse, admin, hostmaster, …; RESERVED_LOCAL_PARTS) are refused with 400. " +
        "An address another account released lately is held back (409 USERNAME_TAKEN) for ADDRESS_QUARANTINE_DAYS; its own tenant may take it again.",
    }),
    displayName: DisplayName.optional(),
    domain: DomainName.optional(),
    workspaceId: z.uuid().optional(),
    metadata: Metadata.optional(),
  })
  .meta({ id: "CreateInboxBody" });
/** `?strict=true`: refuse instead of falling back to `name1` … `name99`. As it travels, a string. */
export const StrictFlag = z.enum(["true", "false", "1", "0"]).optional();
export const CreateInboxQuery = z.object({
  strict: StrictFlag.transform((v) => v === "true" || v === "1"),
});

export const UpdateInboxBody = z
  .object({ displayName: DisplayName.nullable().optional(), metadata: Metadata.optional() })
  .refine((b) => b.displayName !== undefined || b.metadata !== undefined, "give displayName or metadata")
  .meta({ id: "UpdateInboxBody" });

export const AddAddressBody = z
  .object({
    email: EmailAddress.meta({
      description:
        "On the platform domain or a domain verified in the inbox's workspace. Reserved role addresses are refused (400); an address held " +
        "by anyone, or released lately by another account, is refused (409); an inbox has at most MAX_ADDRESSES_PER_INBOX addresses, its own included (409).",
    }),
    primary: z.boolean().default(true),
  })
  .meta({ id: "AddAddressBody" });

export const InboxAddress = z.object({ address: z.string(), isPrimary: z.boolean() });

export const Inbox = z
  .object({
    id: z.uuid(),
    email: z.string(),
    canonicalEmail: z.string(),
    username: z.string(),
    domain: z.string(),
    displayName: z.string().nullable(),
    workspaceId: z.uuid(),
    addresses: z.array(InboxAddress),
    metadata: z.record(z.string(), z.unknown()),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: "Inbox" });
export type Inbox = z.infer<typeof Inbox>;

/** `POST /v1/inboxes`: 201 with the ak_ key on first creation; 200 with `existed` for the caller's own inbox. */
export const CreatedInbox = Inbox.extend({ apiKey: z.string().optional(), existed: z.boolean() }).meta({ id: "CreatedInbox" });
export const InboxList = z.object({ inboxes: z.array(Inbox), pagination: PaginationOut });
export const AddressAdded = z.object({ ok: z.boolean(), address: z.string(), isPrimary: z.boolean() });
export const AddressRemoved = z.object({ deleted: z.boolean(), address: z.string() });

/** Bodies the gateway sends to the mailbox service. */
export const CreateInboxCommand = z.object({ body: z.unknown(), query: z.unknown() });
export const InboxRef = z.object({ inboxId: z.string() });
/** Inboxes were listed whole before pages: the default limit (1,000) keeps that answer for tenants of a sensible size. */
export const ListInboxesQuery = z.object({ workspace: z.uuid("must be a UUID").optional(), ...pageFields(1000, 1000) });
export const UpdateInboxCommand = z.object({ inboxId: z.string(), body: z.unknown() });
export const AddAddressCommand = z.object({ inboxId: z.string(), body: z.unknown() });
/** An address as a path segment (`DELETE /inboxes/:inboxId/addresses/:address`), decoded once by Express. */
export const AddressKey = z.string().min(1).max(320).refine(noControl, "must not contain control characters");
export const RemoveAddressCommand = z.object({ inboxId: z.string(), address: AddressKey });

/** Identity, asked by mailbox to issue the key of a new inbox. */
export const IssueInboxKeyCommand = z.object({ workspaceId: z.uuid(), inboxId: z.uuid() });

/**
 * A page of the address directory (every claimed address and its inbox), in address order.
 * `fromSeq`: every mailbox event up to this stream sequence is in the pages; a reader
 * replays the events after it (applying one already in a page again changes nothing).
 */
export const DirectoryPageQuery = z.object({ after: z.string().max(320).optional(), limit: z.number().int().min(1).max(10_000).default(5_000) });
export const DirectoryPage = z.object({
  fromSeq: z.number().int().min(0),
  entries: z.array(z.object({ address: z.string(), tenantId: z.uuid(), workspaceId: z.uuid(), inboxId: z.uuid() })),
});
export type DirectoryPage = z.infer<typeof DirectoryPage>;
/** Addresses smtp-ingress's directory lacks though it holds the whole stream: asked of the read model. */
export const DirectoryLookupQuery = z.object({ addresses: z.array(z.string().max(320)).min(1).max(100) });
export const DirectoryLookup = z.object({ entries: DirectoryPage.shape.entries });
export type DirectoryLookup = z.infer<typeof DirectoryLookup>;
