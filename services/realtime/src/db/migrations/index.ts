import type { Migration } from "kysely";
// --- feed migrations ---
// --- ws migrations ---
// --- webhooks migrations ---

/** Every migration, by name; names sort in the order they must run. */
export const migrations: Record<string, Migration> = {
  // --- feed ---
  // --- ws ---
  // --- webhooks ---
};
