import pg from "pg";
import type { Stack } from "./stack.ts";

/** Every table the mailbox's projection writes, and its bookkeeping: what a replay rebuilds from the stream. */
const READ_MODEL_TABLES = [
  "inboxes",
  "inbox_addresses",
  "address_claims",
  "lists",
  "list_entries",
  "domains",
  "domain_claims",
  "threads",
  "thread_folders",
  "folder_counts",
  "messages",
  "drafts",
  "delivery_outcomes",
  "address_quarantine",
  "closed_workspaces",
  "applied_events",
  "projection_checkpoint",
];

/** Empties the mailbox's read model (its replicas stopped first), as an operator rebuilding it would. */
export async function truncateMailboxReadModel(s: Stack): Promise<void> {
  const schema = s.iso.schema("mailbox");
  const c = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
  await c.connect();
  try {
    await c.query(`truncate ${READ_MODEL_TABLES.map((t) => `${schema}.${t}`).join(", ")}`);
  } finally {
    await c.end();
  }
}
