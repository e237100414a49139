/**
 * Every table the mailbox's read model (mailbox-read-model) writes, with its dedupe record:
 * what an operator's rebuild (`mam rebuild mailbox`) empties before replaying the stream.
 * A new table of the projection belongs here, or a rebuild would keep its stale rows.
 *
 * applied_events is not this projection's alone: the mailbox's consumers of billing's events
 * (mailbox-plan-limits, mailbox-default-limits, mailbox-tenant-pauses) record there too, and a
 * rebuild erases their records with it. Safe today: their consumers are not reset, so at most
 * an event redelivered later is applied again, and each of their applies is guarded by the
 * aggregate's version (a row is only ever replaced by a newer one), so applying twice changes
 * nothing. A consumer sharing the table whose apply is not idempotent that way would need its
 * own dedupe table.
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
