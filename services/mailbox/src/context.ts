import type { CommandContext } from "@mam/service-kit/commands.ts";
import type { RecentlyApplied } from "@mam/service-kit/recent.ts";
import type { MailboxConfig } from "./config.ts";
import type { MailboxDb } from "./db/schema.ts";

/** What every command, query and projection of the mailbox needs. */
export interface MailboxContext extends CommandContext<MailboxDb> {
  cfg: MailboxConfig;
  /** Sent messages whose every recipient was delivered in the send's own transaction (see settledAtSend). */
  settledAtSend: RecentlyApplied;
}

/**
 * One `T` per service instance (its context), made on first use: the caches and batchers a
 * module keeps for the instance it serves, of which a process may run several (tests).
 */
export function perContext<T>(make: (ctx: MailboxContext) => T): (ctx: MailboxContext) => T {
  const made = new WeakMap<MailboxContext, T>();
  return (ctx) => {
    let v = made.get(ctx);
    if (v === undefined) made.set(ctx, (v = make(ctx)));
    return v;
  };
}
