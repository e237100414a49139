import { z } from "zod";
import { DisplayName, EmailAddress, Metadata } from "./mailbox-api.ts";
import { PaginationOut, pageFields } from "./pagination.ts";

const ListName = z
  .string()
  .trim()
  .min(1, "must not be empty")
  .max(200)
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), "must not contain control characters");
const Description = z.string().trim().max(2000);

export const CreateListBody = z.object({ name: ListName, description: Description.nullable().optional() }).meta({ id: "CreateListBody" });
export const UpdateListBody = z
  .object({ name: ListName.optional(), description: Description.nullable().optional() })
  .refine((b) => b.name !== undefined || b.description !== undefined, "give name or description")
  .meta({ id: "UpdateListBody" });
export const AddEntryBody = z
  .object({ email: EmailAddress, displayName: DisplayName.nullable().optional(), metadata: Metadata.optional() })
  .meta({ id: "AddEntryBody" });
export const UpdateEntryBody = z
  .object({ displayName: DisplayName.nullable().optional(), metadata: Metadata.optional() })
  .refine((b) => b.displayName !== undefined || b.metadata !== undefined, "give displayName or metadata")
  .meta({ id: "UpdateEntryBody" });

export const ListEntry = z
  .object({
    id: z.uuid(),
    email: z.string(),
    displayName: z.string().nullable(),
    metadata: z.record(z.string(), z.unknown()),
    createdAt: z.string(),
  })
  .meta({ id: "ListEntry" });
export const AddressList = z
  .object({
    id: z.uuid(),
    inboxId: z.uuid(),
    name: z.string(),
    description: z.string().nullable(),
    entryCount: z.number().int(),
    entries: z.array(ListEntry),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: "List" });
export const ListsOfInbox = z.object({ lists: z.array(AddressList), pagination: PaginationOut });
/** A list's entries a page at a time (a list holds up to 10,000; `GET` of the list embeds them all). */
export const EntryPage = z.object({ entries: z.array(ListEntry), pagination: PaginationOut });
export type ListEntry = z.infer<typeof ListEntry>;
export type AddressList = z.infer<typeof AddressList>;

/** Bodies the gateway sends: path parameters and the request body. */
export const ListRef = z.object({ inboxId: z.string(), listId: z.string().optional(), entryId: z.string().optional(), body: z.unknown().optional() });

/** An inbox's lists were listed whole before pages: the default limit (1,000) is the most an inbox may hold. */
export const ListListsQuery = z.object(pageFields(1000, 1000));
export const ListListsRequest = z.object({ inboxId: z.string(), query: ListListsQuery });
export const ListEntriesQuery = z.object(pageFields(100, 1000));
export const ListEntriesRequest = z.object({ inboxId: z.string(), listId: z.string(), query: ListEntriesQuery });

/** Most lists and entries one inbox may hold: a bound on every input. */
export const MAX_LISTS_PER_INBOX = 1_000;
export const MAX_ENTRIES_PER_LIST = 10_000;
