import { sameDigest } from "@mam/scope/key-hash.ts";
import { keyIssued, keyRevoked, type Draft, type NewKey } from "./drafts.ts";
import type { IdentityState } from "./state.ts";

/**
 * Makes the operator's sa_ key what the configuration says. `configured`: SUPER_ADMIN_KEY
 * is set and `key` is its hash, the only valid sa_ key from now on. `generated`: none is
 * set and `key` was made at random, to be issued only if no operator key is stored yet.
 */
export interface EnsureOperatorKey {
  type: "EnsureOperatorKey";
  source: "configured" | "generated";
  key: NewKey;
}

export type OperatorKeyCommand = EnsureOperatorKey;

const OPERATOR = { tenantId: null, workspaceId: null, inboxId: null };

export function decideOperatorKey(command: OperatorKeyCommand, state: IdentityState): Draft[] {
  const active = state.keys.filter((k) => k.kind === "super_admin" && k.workspaceId === null && !k.revoked);
  switch (command.source) {
    case "generated":
      return active.length ? [] : [keyIssued(command.key, "super_admin", OPERATOR, "Generated operator key")];
    case "configured": {
      const keep = active.find((k) => sameDigest(k.keyHash, command.key.keyHash));
      const drafts = active.filter((k) => k !== keep).map((k) => keyRevoked(k, "revoked"));
      if (!keep) drafts.push(keyIssued(command.key, "super_admin", OPERATOR, "SUPER_ADMIN_KEY"));
      return drafts;
    }
    default: {
      const unreachable: never = command.source;
      throw new Error(`unhandled operator key source ${String(unreachable)}`);
    }
  }
}
