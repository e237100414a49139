/**
 * Every table the mailbox's read model (mailbox-read-model) writes, with its dedupe record:
 * what an operator's rebuild (`mam rebuild mailbox`) empties before replaying the stream.
 * A new table of the projection belongs here, or a rebuild would keep its stale rows.
 */
export const READ_MODEL_TABLES = [
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
];
