import { notFound } from "@mam/contracts/errors.ts";
import type { MailboxEvent } from "@mam/contracts/mailbox-events.ts";
import type { DraftFields } from "@mam/contracts/message-events.ts";
import type { z } from "zod";
import { drafted, type Owner } from "./drafted.ts";
import type { EventDraft } from "./execute.ts";

export type Fields = z.infer<typeof DraftFields>;

export interface KnownDraft {
  inboxId: string;
  fields: Fields;
  deleted: boolean;
  /** The read model's `version`: one more with each event about the draft. */
  version: number;
}

/** The drafts a decision is about, by id (`load` reads the one a command names). */
export interface DraftsState {
  drafts: ReadonlyMap<string, KnownDraft>;
}

export type DraftCommand =
  /** Creates the draft (`create`) or merge-patches it: omitted fields stay as they were. */
  | { kind: "save"; owner: Owner; inboxId: string; draftId: string; create: boolean; patch: Partial<Fields> }
  | { kind: "delete"; owner: Owner; inboxId: string; draftId: string };

const EMPTY: Fields = { to: [], cc: [], bcc: [], subject: "", plainBody: null, htmlBody: null, replyToMessageId: null, verified: false };

export const initial = (): DraftsState => ({ drafts: new Map() });

export function evolve(state: DraftsState, event: MailboxEvent): DraftsState {
  if (event.type === "DraftSaved") {
    const d = event.data;
    const version = (state.drafts.get(d.draftId)?.version ?? 0) + 1;
    return { drafts: new Map(state.drafts).set(d.draftId, { inboxId: d.inboxId, fields: d.fields, deleted: false, version }) };
  }
  if (event.type === "DraftDeleted") {
    const d = state.drafts.get(event.data.draftId);
    if (!d) return state;
    return { drafts: new Map(state.drafts).set(event.data.draftId, { ...d, deleted: true, version: d.version + 1 }) };
  }
  return state;
}

/** The draft if it is a live one of this inbox. */
export function liveDraft(state: DraftsState, draftId: string, inboxId: string): KnownDraft {
  const d = state.drafts.get(draftId);
  if (!d || d.deleted || d.inboxId !== inboxId) throw notFound("Draft");
  return d;
}

export function decide(c: DraftCommand, state: DraftsState): EventDraft[] {
  switch (c.kind) {
    case "save": {
      const current = c.create ? undefined : liveDraft(state, c.draftId, c.inboxId);
      const patch = Object.fromEntries(Object.entries(c.patch).filter(([, v]) => v !== undefined));
      const fields = { ...EMPTY, ...current?.fields, ...patch };
      const data = { draftId: c.draftId, inboxId: c.inboxId, created: c.create, fields };
      return [drafted(c.owner, c.draftId, (current?.version ?? 0) + 1, { type: "DraftSaved", schemaVersion: 1, data })];
    }
    case "delete": {
      const live = liveDraft(state, c.draftId, c.inboxId);
      return [drafted(c.owner, c.draftId, live.version + 1, { type: "DraftDeleted", schemaVersion: 1, data: { draftId: c.draftId, sentMessageId: null } })];
    }
    default: {
      const unreachable: never = c;
      throw new Error(`unknown draft command ${(unreachable as DraftCommand).kind}`);
    }
  }
}
