import type { MailboxContext } from "../context.ts";
import { decide, type DeliveryRecord } from "../commands/delivery-record-decision.ts";
import { execute, type CommandMeta } from "../commands/execute.ts";
import { DECISION_COLUMNS, messagesStateOf } from "../read/messages.ts";
import type { Target } from "./receive.ts";

const BOUNCES: CommandMeta = { actor: { type: "system", id: "bounces" }, requestId: "dsn" };

export interface DeliveryReport {
  originalMessageIds: string[];
  recipients: string[];
  reason: string;
}

/** A delivery status notification (RFC 3464): the original's Message-ID, who failed, why. */
export function readDeliveryReport(raw: Buffer): DeliveryReport | null {
  const text = raw.subarray(0, 512 * 1024).toString("latin1");
  const headEnd = text.indexOf("\r\n\r\n");
  const head = text.slice(0, headEnd === -1 ? text.length : headEnd).replace(/\r\n[ \t]+/g, " ");
  if (!/^content-type:\s*multipart\/report\b[^\r\n]*report-type="?delivery-status/im.test(head)) return null;
  const body = text.slice(headEnd);
  const failed = [...body.matchAll(/^Action:\s*failed/gim)].length > 0;
  if (!failed) return null;
  const originalMessageIds = [...body.matchAll(/^Message-ID:\s*(<[^>\r\n]+>)/gim)].map((m) => m[1]!).filter((id, i, all) => all.indexOf(id) === i);
  const recipients = [...body.matchAll(/^Final-Recipient:\s*[^;]*;\s*([^\s]+)/gim)].map((m) => m[1]!.toLowerCase());
  const reason = /^Diagnostic-Code:\s*([^\r\n]+)/im.exec(body)?.[1] ?? /^Status:\s*([^\r\n]+)/im.exec(body)?.[1] ?? "delivery failed";
  return originalMessageIds.length ? { originalMessageIds, recipients, reason: reason.slice(0, 1000) } : null;
}

/** A DSN about a message this inbox sent marks that message bounced (message.bounced). */
export async function recordBounce(ctx: MailboxContext, target: Target, report: DeliveryReport): Promise<void> {
  const c: DeliveryRecord = {
    kind: "report",
    owner: { tenantId: target.tenant_id, workspaceId: target.workspace_id },
    inboxId: target.inbox_id,
    originalHeaders: report.originalMessageIds,
    recipients: report.recipients,
    reason: report.reason,
  };
  await execute(ctx, target.tenant_id, BOUNCES, {
    load: async (tx) => {
      const rows = await tx
        .selectFrom("messages")
        .select(DECISION_COLUMNS)
        .where("workspace_id", "=", target.workspace_id)
        .where("inbox_id", "=", target.inbox_id)
        .where("direction", "=", "outbound")
        .where("message_id_header", "in", report.originalMessageIds)
        .orderBy("created_at")
        .execute();
      return messagesStateOf(rows);
    },
    decide: (state) => decide(c, state),
    answer: async () => undefined,
  });
}
