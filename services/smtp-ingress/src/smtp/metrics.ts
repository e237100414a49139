import type { SMTPServer } from "smtp-server";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import { streamMessages } from "@mam/service-kit/metrics.ts";

/** What the SMTP door reports of its connections (see withAsciiReplies, which sees each one and each reply). */
export interface SmtpObserver {
  connected(): void;
  replied(code: number): void;
}

/**
 * The SMTP door's metrics: sessions opened (every connection, refused ones too) and open
 * now, replies by code (a closed set: the codes are ours and smtp-server's, never the
 * client's), and the ingest backlog, mail answered 250 that the mailbox has not filed yet.
 */
export function smtpMetrics(b: Backbone<never>): { observer: SmtpObserver; watch(server: SMTPServer, ingestStream: string): void } {
  const opened = b.metrics.counter("mam_smtp_sessions_opened_total", "SMTP connections accepted, those refused at once (too many) included");
  const replies = b.metrics.counter("mam_smtp_replies_total", "SMTP replies sent, by reply code", ["code"]);
  return {
    observer: { connected: () => opened.inc(), replied: (code) => replies.inc({ code: String(code) }) },
    watch(server, ingestStream) {
      const connections = (server as unknown as { connections: Set<unknown> }).connections;
      b.watch("mam_smtp_sessions_current", "SMTP connections open now", [], () => [{ value: connections.size }]);
      b.watch(
        "mam_ingest_backlog_messages",
        "Accepted mail not yet filed: messages in the INGEST work queue the mailbox has not acknowledged",
        [],
        streamMessages(b.bus, ingestStream),
      );
    },
  };
}
