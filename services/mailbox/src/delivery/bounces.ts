import type { MailboxContext } from "../context.ts";
import { readModelRebuilding } from "../read/rebuilding.ts";
import { decide, type DeliveryRecord } from "../commands/delivery-record-decision.ts";
import { execute, type CommandMeta } from "../commands/execute.ts";
import { loadDeliveryState } from "./outcomes.ts";
import { countOutcome } from "./metrics.ts";

const BOUNCES: CommandMeta = { actor: { type: "system", id: "bounces" }, requestId: "dsn" };

export interface DeliveryReport {
  /** The recipients the report says failed (Final-Recipient, Original-Recipient), lower case. */
  recipients: string[];
  /** Why each failed: its own block's Diagnostic-Code, or Status. */
  reasons: Record<string, string>;
}

/** A report's header ends at its first blank line, CRLF or bare LF alike. */
const BLANK_LINE = /\r?\n\r?\n/;

/**
 * A delivery status notification (RFC 3464) that says delivery failed: who failed, why. Each
 * recipient has a block of its own (fields up to a blank line), with its own Action and its
 * own reason: only the blocks that say `failed` count, so a report that also tells of
 * recipients delayed or delivered bounces none of those.
 */
export function readDeliveryReport(raw: Buffer): DeliveryReport | null {
  const text = raw.subarray(0, 512 * 1024).toString("latin1");
  const blank = BLANK_LINE.exec(text);
  const headEnd = blank ? blank.index : text.length;
  const head = text.slice(0, headEnd).replace(/\r?\n[ \t]+/g, " ");
  if (!/^content-type:\s*multipart\/report\b[^\r\n]*report-type="?delivery-status/im.test(head)) return null;
  // Unfolded, so a field folded anywhere reads as one line (and the patterns stay on one line).
  const body = text.slice(headEnd).replace(/\r?\n[ \t]+/g, " ");
  const reasons: Record<string, string> = {};
  for (const block of body.split(BLANK_LINE)) {
    if (!/^Action:\s*failed\b/im.test(block)) continue;
    const reason = (/^Diagnostic-Code:[ \t]*([^\r\n]+)/im.exec(block)?.[1] ?? /^Status:[ \t]*([^\r\n]+)/im.exec(block)?.[1] ?? "delivery failed").slice(
      0,
      1000,
    );
    // Final-Recipient, and Original-Recipient where a forwarder changed the address on the way.
    // `rfc822; a@b`, also written `rfc822; <a@b>`.
    for (const m of block.matchAll(/^(?:Final|Original)-Recipient:[^;\r\n]*;[ \t]*<?([^\s<>;]+)>?/gim)) {
      const address = m[1]!.toLowerCase();
      reasons[address] ??= reason;
    }
  }
  const recipients = Object.keys(reasons);
  return recipients.length ? { recipients, reasons } : null;
}

export type BounceResult =
  | { result: "recorded"; recipients: string[] }
  /** Every recipient it names that the message was sent to is bounced already (a redelivered report, or another about them). */
  | { result: "bounced already" }
  | { result: "no such message" }
  /** It names none of the message's recipients: it marks nobody. */
  | { result: "no recipient of the message" };

/** Retryable: the message is not in the read model yet (it is being rebuilt). */
export class MessageNotInReadModel extends Error {
  override name = "MessageNotInReadModel";
  constructor(readonly messageId: string) {
    super(`message ${messageId} is not in the read model yet (it is being rebuilt); the report is read again later`);
  }
}

/**
 * A report that came back to the return path of message `messageId` (its token verified)
 * marks bounced the recipients it names that the message was sent to, and only those. The
 * token is per message and every recipient (Bcc too) sees it, so a report naming none of
 * them, or others, marks nobody: anyone who got the message could send one.
 */
export async function recordBounce(ctx: MailboxContext, messageId: string, report: DeliveryReport): Promise<BounceResult> {
  const m = await ctx.db
    .selectFrom("messages")
    .select(["tenant_id", "workspace_id", "to_addresses", "cc_addresses", "bcc_addresses"])
    .where("message_id", "=", messageId)
    .where("direction", "=", "outbound")
    .executeTakeFirst();
  if (!m) {
    // Read after the message: with no record then, the read model was whole and the message is
    // truly unknown. With one, it is not replayed yet: thrown, so the report comes back later.
    if (await readModelRebuilding(ctx)) throw new MessageNotInReadModel(messageId);
    return { result: "no such message" };
  }
  const sentTo = new Set([...m.to_addresses, ...m.cc_addresses, ...m.bcc_addresses].map((r) => r.toLowerCase()));
  const named = report.recipients.filter((r) => sentTo.has(r));
  if (!named.length) return { result: "no recipient of the message" };
  // One record per reason: each recipient bounced with its own block's.
  const byReason = new Map<string, string[]>();
  for (const r of named) {
    const reason = report.reasons[r]!;
    const same = byReason.get(reason);
    if (same) same.push(r);
    else byReason.set(reason, [r]);
  }
  const recorded: string[] = [];
  for (const [reason, recipients] of byReason) {
    const c: DeliveryRecord = { kind: "report", owner: { tenantId: m.tenant_id, workspaceId: m.workspace_id }, messageId, recipients, reason };
    recorded.push(
      ...(await execute(ctx, m.tenant_id, BOUNCES, {
        load: (tx) => loadDeliveryState(tx, m.workspace_id, messageId),
        decide: (state) => decide(c, state),
        answer: async (_tx, _state, events) => events.flatMap((d) => (d.event.type === "MessageBounced" ? d.event.data.recipients : [])),
      })),
    );
  }
  countOutcome("bounced", recorded.length);
  return recorded.length ? { result: "recorded", recipients: recorded } : { result: "bounced already" };
}
