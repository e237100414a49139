import { setTimeout as sleep } from "node:timers/promises";
import { call } from "@mam/bus/rpc.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import type { RealtimeContext } from "../context.ts";
import { messageIdOf, type MessageEvent, type Scoped, type Shown } from "./render.ts";

/** Pauses before asking again for messages the mailbox does not have yet (it normally has them before the event exists). */
const MISSING_RETRY_MS = [50, 250, 1_000];
/** Pauses before asking again when the mailbox did not answer; then the batch goes back to the stream. */
const UNAVAILABLE_RETRY_MS = [100, 500, 2_000];
/** Workspaces asked at once. */
const WORKSPACES_IN_FLIGHT = 8;
/** Ids in one request (the contract's bound). */
const IDS_PER_REQUEST = 100;

/** A message as asked for: under its event's tenant and workspace. */
export const shownKey = (e: Scoped, messageId: string) => `${e.tenantId}/${e.workspaceId}/${messageId}`;

/**
 * The mailbox's rendering of the messages these events are about, by `shownKey`: one
 * request per workspace (per hundred ids), a few workspaces at a time. A message the
 * mailbox does not have is asked for again a few times, then left out (the event is
 * rendered from its own facts).
 */
export async function showMessages(ctx: RealtimeContext, events: (MessageEvent & Scoped)[]): Promise<Map<string, Shown>> {
  const byScope = new Map<string, { scope: Scoped; ids: Set<string> }>();
  for (const e of events) {
    const key = shownKey(e, "");
    const s = byScope.get(key) ?? { scope: { tenantId: e.tenantId, workspaceId: e.workspaceId }, ids: new Set<string>() };
    s.ids.add(messageIdOf(e));
    byScope.set(key, s);
  }
  const shown = new Map<string, Shown>();
  const queue = [...byScope.values()];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const { scope, ids } = next;
      let missing = [...ids];
      for (let i = 0; ; i++) {
        for (const s of await askAll(ctx, scope, missing)) shown.set(shownKey(scope, s.message.messageId), s);
        missing = missing.filter((id) => !shown.has(shownKey(scope, id)));
        if (!missing.length || i >= MISSING_RETRY_MS.length) break;
        await sleep(MISSING_RETRY_MS[i]);
      }
      if (missing.length) ctx.logger.warn({ ...scope, messageIds: missing.slice(0, 10) }, "messages the mailbox does not have; rendered from their events");
    }
  };
  await Promise.all(Array.from({ length: Math.min(WORKSPACES_IN_FLIGHT, queue.length) }, worker));
  return shown;
}

async function askAll(ctx: RealtimeContext, scope: Scoped, ids: string[]): Promise<Shown[]> {
  const chunks: string[][] = [];
  for (let i = 0; i < ids.length; i += IDS_PER_REQUEST) chunks.push(ids.slice(i, i + IDS_PER_REQUEST));
  return (await Promise.all(chunks.map((c) => ask(ctx, scope, c)))).flat();
}

async function ask(ctx: RealtimeContext, scope: Scoped, messageIds: string[]): Promise<Shown[]> {
  for (let i = 0; ; i++) {
    const r = await call(ctx.bus, RpcContracts.mailbox.feedMessages, { ...scope, messageIds });
    if (r.ok) return r.body.messages;
    if (r.error.code !== "UNAVAILABLE" || i >= UNAVAILABLE_RETRY_MS.length)
      throw new Error(`the mailbox's feed.messages failed: ${r.error.code}: ${r.error.error}`);
    await sleep(UNAVAILABLE_RETRY_MS[i]);
  }
}
