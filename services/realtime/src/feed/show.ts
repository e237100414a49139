import { setTimeout as sleep } from "node:timers/promises";
import { call } from "@mam/bus/rpc-client.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import type { RealtimeContext } from "../context.ts";
import { messageIdOf, type MessageEvent, type Scoped, type Shown } from "./render.ts";

/**
 * Pauses before asking again for a received or sent message the mailbox does not have yet
 * (it normally has it before the event exists: its read model is written with the event).
 * A delivery's or bounce's message was stored long before: missing, it is not asked again.
 */
const MISSING_RETRY_MS = [50, 250, 1_000];
/** Pauses before asking again when the mailbox did not answer; then the batch goes back to the stream. */
const UNAVAILABLE_RETRY_MS = [100, 500, 2_000];
/** Workspaces asked at once. */
const WORKSPACES_IN_FLIGHT = 8;
/** Ids in one request (the contract's bound). */
const IDS_PER_REQUEST = 100;

/** A message as asked for: under its event's tenant and workspace. */
export const shownKey = (e: Scoped, messageId: string) => `${e.tenantId}/${e.workspaceId}/${messageId}`;

/** The mailbox did not answer (after a few tries): nothing can be shown now, by anyone. */
export class MailboxUnavailable extends Error {}

/**
 * The mailbox's rendering of the messages these events are about, by `shownKey`: one
 * request per workspace (per hundred ids), a few workspaces at a time. A message the
 * mailbox does not have is asked for again a few times, then left out (the event is
 * rendered from its own facts); so are a workspace's messages when the mailbox fails on
 * them with anything but "unavailable" (logged: one workspace's trouble must not hold back
 * the others' events in the batch, nor come back forever). An unavailable mailbox throws
 * MailboxUnavailable: the batch goes back to the stream.
 */
export async function showMessages(ctx: RealtimeContext, events: (MessageEvent & Scoped)[]): Promise<Map<string, Shown>> {
  const byScope = new Map<string, { scope: Scoped; ids: Set<string>; patient: Set<string> }>();
  for (const e of events) {
    const key = shownKey(e, "");
    const s = byScope.get(key) ?? { scope: { tenantId: e.tenantId, workspaceId: e.workspaceId }, ids: new Set<string>(), patient: new Set<string>() };
    s.ids.add(messageIdOf(e));
    if (e.type === "MessageReceived" || e.type === "MessageSent") s.patient.add(messageIdOf(e));
    byScope.set(key, s);
  }
  const shown = new Map<string, Shown>();
  const queue = [...byScope.values()];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const { scope, ids, patient } = next;
      let missing = [...ids];
      let failure: unknown;
      for (let i = 0; ; i++) {
        try {
          for (const s of await askAll(ctx, scope, missing)) shown.set(shownKey(scope, s.message.messageId), s);
          failure = undefined;
        } catch (err) {
          if (err instanceof MailboxUnavailable) throw err;
          failure = err;
        }
        const left = missing.filter((id) => !shown.has(shownKey(scope, id)));
        missing = failure ? left : left.filter((id) => patient.has(id));
        if (!missing.length || i >= MISSING_RETRY_MS.length) break;
        await sleep(MISSING_RETRY_MS[i]);
      }
      const left = [...ids].filter((id) => !shown.has(shownKey(scope, id)));
      if (failure) ctx.logger.error({ err: failure, ...scope, messages: left.length }, "the mailbox failed to show messages; rendered from their events");
      else if (left.length) ctx.logger.warn({ ...scope, messageIds: left.slice(0, 10) }, "messages the mailbox does not have; rendered from their events");
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
    if (r.error.code !== "UNAVAILABLE") throw new Error(`the mailbox's feed.messages failed: ${r.error.code}: ${r.error.error}`);
    if (i >= UNAVAILABLE_RETRY_MS.length) throw new MailboxUnavailable(`the mailbox's feed.messages: ${r.error.error}`);
    await sleep(UNAVAILABLE_RETRY_MS[i]);
  }
}
