import type { MailboxContext } from "../context.ts";
import { decide, type DeliveryRecord } from "../commands/delivery-record-decision.ts";
import { execute, type CommandMeta } from "../commands/execute.ts";
import { loadMessages } from "../read/messages.ts";

const BOUNCES: CommandMeta = { actor: { type: "system", id: "bounces" }, requestId: "dsn" };

export interface DeliveryReport {
  /** The recipients the report says failed (Final-Recipient, Original-Recipient), lower case. */
  recipients: string[];
  reason: string;
}

/** A delivery status notification (RFC 3464) that says delivery failed: who failed, why. */
export function readDeliveryReport(raw: Buffer): DeliveryReport | null {
  const text = raw.subarray(0, 512 * 1024).toString("latin1");
  const headEnd = text.indexOf("\r\n\r\n");
  const head = text.slice(0, headEnd === -1 ? text.length : headEnd).replace(/\r\n[ \t]+/g, " ");
  if (!/^content-type:\s*multipart\/report\b[^\r\n]*report-type="?delivery-status/im.test(head)) return null;
  const body = text.slice(headEnd);
  if (!/^Action:\s*failed/im.test(body)) return null;
  // Final-Recipient, and Original-Recipient where a forwarder changed the address on the way.
  const recipients = [...new Set([...body.matchAll(/^(?:Final|Original)-Recipient:\s*[^;]*;\s*([^\s]+)/gim)].map((m) => m[1]!.toLowerCase()))];
  const reason = /^Diagnostic-Code:\s*([^\r\n]+)/im.exec(body)?.[1] ?? /^Status:\s*([^\r\n]+)/im.exec(body)?.[1] ?? "delivery failed";
  return { recipients, reason: reason.slice(0, 1000) };
}

export type BounceResult = "recorded" | "no such message";

/**
 * A report that came back to the return path of message `messageId` (its token verified)
 * marks that message bounced for the recipients the report names that it was sent to (all
 * of them when it names none of them: a forwarder may name the final address instead).
 */
export async function recordBounce(ctx: MailboxContext, messageId: string, report: DeliveryReport): Promise<BounceResult> {
  const m = await ctx.db
    .selectFrom("messages")
    .select(["tenant_id", "workspace_id", "to_addresses", "cc_addresses", "bcc_addresses"])
    .where("message_id", "=", messageId)
    .where("direction", "=", "outbound")
    .executeTakeFirst();
  if (!m) return "no such message";
  const sentTo = new Set([...m.to_addresses, ...m.cc_addresses, ...m.bcc_addresses].map((r) => r.toLowerCase()));
  const named = report.recipients.filter((r) => sentTo.has(r));
  const c: DeliveryRecord = {
    kind: "report",
    owner: { tenantId: m.tenant_id, workspaceId: m.workspace_id },
    messageId,
    recipients: named.length ? named : [...sentTo],
    reason: report.reason,
  };
  await execute(ctx, m.tenant_id, BOUNCES, {
    load: (tx) => loadMessages(tx, m.workspace_id, [messageId]),
    decide: (state) => decide(c, state),
    answer: async () => undefined,
  });
  return "recorded";
}
