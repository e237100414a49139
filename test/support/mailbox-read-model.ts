import pg from "pg";
import { READ_MODEL_TABLES } from "@mam/mailbox/projections/read-model-tables.ts";
import type { Stack } from "./stack.ts";

/** What a replay rebuilds from the stream: the mailbox's read model and its checkpoints. */
const TABLES = [...READ_MODEL_TABLES, "projection_checkpoint"];

/** Empties the mailbox's read model (its replicas stopped first), as an operator rebuilding it would. */
export async function truncateMailboxReadModel(s: Stack): Promise<void> {
  const schema = s.iso.schema("mailbox");
  const c = new pg.Client({ connectionString: s.iso.urls.DATABASE_URL });
  await c.connect();
  try {
    await c.query(`truncate ${TABLES.map((t) => `${schema}.${t}`).join(", ")}`);
  } finally {
    await c.end();
  }
}
