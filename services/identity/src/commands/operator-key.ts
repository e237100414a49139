import type { IdentityContext } from "../context.ts";
import { activeOperatorKeys } from "../read/queries.ts";
import { execute } from "./append.ts";
import { decideOperatorKey, type EnsureOperatorKey } from "./decisions/operator-key.ts";
import { newKey } from "./issue-key.ts";
import { stateOf } from "./load.ts";

const SYSTEM = { actor: { type: "system" as const, id: "identity" }, requestId: "startup" };

/**
 * Makes the operator's key what the configuration says. With SUPER_ADMIN_KEY set, that
 * key (hashed) is the only valid sa_ key. Without it, a key is generated the first time
 * and its plaintext returned once for printing; later starts keep the stored one.
 */
export async function ensureOperatorKey(ctx: IdentityContext, configured: string | undefined): Promise<string | null> {
  // Generated whether or not it is needed: whether one is stored is known only under the lock.
  const { plaintext, key } = newKey(ctx, "super_admin", configured || undefined);
  const command: EnsureOperatorKey = { type: "EnsureOperatorKey", source: configured ? "configured" : "generated", key };
  return execute(ctx, null, SYSTEM, {
    load: async (tx) => stateOf([], await activeOperatorKeys(tx)),
    decide: (state) => decideOperatorKey(command, state),
    answer: async (_tx, _state, events) => (command.source === "generated" && events.some((d) => d.event.type === "KeyIssued") ? plaintext : null),
  });
}
