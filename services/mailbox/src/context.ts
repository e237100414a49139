import type { CommandContext } from "@mam/service-kit/commands.ts";
import type { MailboxConfig } from "./config.ts";
import type { MailboxDb } from "./db/schema.ts";

/** What every command, query and projection of the mailbox needs. */
export interface MailboxContext extends CommandContext<MailboxDb> {
  cfg: MailboxConfig;
}
