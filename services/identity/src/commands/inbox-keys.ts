import type { IdentityContext } from "../context.ts";
import { activeKeysOfInbox } from "../read/queries.ts";
import { execute } from "./append.ts";
import { decideKey, type RevokeInboxKeys } from "./decisions/keys.ts";
import { stateOf } from "./load.ts";

/**
 * A deleted inbox's ak_ keys stop working: revoked like any key. Decided again on a
 * redelivered InboxDeleted, it finds them revoked and records nothing.
 */
export async function revokeInboxKeys(ctx: IdentityContext, tenantId: string, workspaceId: string, inboxId: string): Promise<void> {
  const command: RevokeInboxKeys = { type: "RevokeInboxKeys", workspaceId, inboxId };
  const meta = { actor: { type: "system" as const, id: "inbox-deleted" }, requestId: `inbox-deleted:${inboxId}` };
  await execute(ctx, tenantId, meta, {
    load: async (tx) => stateOf([], await activeKeysOfInbox(tx, workspaceId, inboxId)),
    decide: (state) => decideKey(command, state),
    answer: async () => undefined,
  });
}
