import type { SMTPServer } from "smtp-server";
import type { SmtpObserver } from "./metrics.ts";

/** What smtp-server's live connections offer to answer with (public, absent from its typings). */
interface Replier {
  /** `message` a line, or the lines of a multi-line reply; `context` picks an enhanced code (false: none). */
  send(code: number, message?: string | string[], context?: string | false): void;
}

/** Reply text is printable US-ASCII (RFC 5321 4.2: textstring); anything else becomes "?". */
export const asciiReplyText = (text: string): string => text.replace(/[^\t\x20-\x7e]/g, "?");

/**
 * smtp-server names some of what the client sent in its own refusals (the name of a duplicate
 * MAIL parameter) as it decoded the bytes: 8-bit input came back as UTF-8 in the reply. Every
 * connection's replies pass through asciiReplyText; control characters smtp-server already
 * turns into spaces. `observe` hears of each connection and each reply's code (metrics).
 */
export function withAsciiReplies(server: SMTPServer, observe?: SmtpObserver): SMTPServer {
  const s = server as unknown as { connect(socket: unknown, options: unknown): void; connections: Set<Replier> };
  const connect = s.connect.bind(s);
  s.connect = (socket, options) => {
    connect(socket, options);
    observe?.connected();
    // The connection just made is the last one in the set (insertion order).
    let conn: Replier | undefined;
    for (const c of s.connections) conn = c;
    if (!conn) return;
    const send = conn.send.bind(conn);
    conn.send = (code, data, context) => {
      observe?.replied(code);
      send(code, Array.isArray(data) ? data.map(asciiReplyText) : typeof data === "string" ? asciiReplyText(data) : data, context);
    };
  };
  return server;
}
