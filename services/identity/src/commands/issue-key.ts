import type { KeyKind } from "@mam/contracts/keys.ts";
import { hashKey } from "@mam/scope/key-hash.ts";
import type { IdentityContext } from "../context.ts";
import { generateKey, shownPrefix } from "../keys.ts";
import type { NewKey } from "./decisions/drafts.ts";

/**
 * A key's id, shown prefix and hash, made before its command is decided so the decision
 * stays deterministic. The plaintext goes back to the caller and into no event.
 */
export function newKey(ctx: IdentityContext, kind: KeyKind, plaintext: string = generateKey(kind)): { plaintext: string; key: NewKey } {
  return { plaintext, key: { keyId: ctx.newId(), prefix: shownPrefix(plaintext), keyHash: hashKey(plaintext) } };
}
