import type { Migration } from "kysely";
import * as outbox from "./2026-11-30T0000-outbox.ts";

/**
 * The kit's own tables, migrated with every service that keeps a store (names sort after
 * the services' first migrations, and never collide with theirs).
 */
export const kitMigrations: Record<string, Migration> = {
  "2026-11-30T0000-kit-outbox": outbox,
};
