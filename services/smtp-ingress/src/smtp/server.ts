import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from "smtp-server";
import type { ObjectStore } from "@nats-io/obj";
import type { Bus } from "@mam/bus/connection.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import type { SmtpIngressConfig } from "../config.ts";
import type { Directory, Mailbox } from "./directory.ts";
import { dedupeKeyOf, publishIngest } from "./ingest.ts";
import type { TlsMaterial } from "./tls.ts";

type Callback = (err?: Error | null) => void;

/** What smtp-server's live connections offer (public methods, absent from its typings). */
interface LiveConnection {
  session: SMTPServerSession;
  send(code: number, message: string): void;
  close(): void;
}

/** An SMTP refusal with a precise reply code; smtp-server prints `code message`. */
const reply = (code: number, message: string) => Object.assign(new Error(message), { responseCode: code });

export interface SmtpDeps {
  cfg: SmtpIngressConfig;
  bus: Bus;
  directory: Directory;
  store: () => Promise<ObjectStore>;
  logger: Logger;
  tls: TlsMaterial;
  newId: () => string;
}

/**
 * The door for the world's mail: accepts mail for the platform's addresses only, caps
 * every size and count, and answers 250 only once the message is durably recorded.
 */
export function createSmtpServer(d: SmtpDeps): SMTPServer {
  const hostname = d.cfg.SMTP_HOSTNAME ?? `mx.${d.cfg.MAIL_DOMAIN}`;
  const perIp = new Map<string, number>();
  const targets = new WeakMap<SMTPServerSession, Map<string, Mailbox>>();
  const rcptCount = new WeakMap<SMTPServerSession, number>();

  const server: SMTPServer = new SMTPServer({
    name: hostname,
    banner: "agent mail ESMTP",
    size: d.cfg.SMTP_MAX_MESSAGE_BYTES,
    key: d.tls.key,
    cert: d.tls.cert,
    authOptional: true,
    disabledCommands: ["AUTH"],
    disableReverseLookup: true,
    maxClients: d.cfg.SMTP_MAX_CLIENTS,
    socketTimeout: d.cfg.SMTP_IDLE_TIMEOUT_MS,
    closeTimeout: 10_000,
    logger: false,
    onConnect(session, cb: Callback) {
      const ip = session.remoteAddress;
      const n = (perIp.get(ip) ?? 0) + 1;
      if (n > d.cfg.SMTP_MAX_CLIENTS_PER_IP) return cb(reply(421, "4.7.0 Too many connections from your address, try later"));
      perIp.set(ip, n);
      cb();
    },
    onClose(session) {
      const ip = session.remoteAddress;
      const n = (perIp.get(ip) ?? 1) - 1;
      if (n <= 0) perIp.delete(ip);
      else perIp.set(ip, n);
    },
    onMailFrom(_address: SMTPServerAddress, session, cb: Callback) {
      targets.set(session, new Map());
      rcptCount.set(session, 0);
      cb();
    },
    onRcptTo(address: SMTPServerAddress, session, cb: Callback) {
      const rcpts = targets.get(session) ?? new Map<string, Mailbox>();
      targets.set(session, rcpts);
      const accepted = rcptCount.get(session) ?? 0;
      if (accepted >= d.cfg.SMTP_MAX_RECIPIENTS) return cb(reply(452, "4.5.3 Too many recipients"));
      if (!d.directory.ready) return cb(reply(451, "4.3.0 Address directory is loading, try again shortly"));
      const box = d.directory.lookup(address.address);
      // Never a relay: only our own addresses are accepted.
      if (!box) return cb(reply(550, "5.1.1 No such mailbox here"));
      rcpts.set(address.address.toLowerCase(), box);
      rcptCount.set(session, accepted + 1);
      cb();
    },
    onData(stream: SMTPServerDataStream, session, cb: Callback) {
      // A sender that trickles a byte now and then never trips the idle timeout: the data as a whole has a deadline.
      const deadline = setTimeout(() => {
        const conn = [...(server as unknown as { connections: Set<LiveConnection> }).connections].find((c) => c.session === session);
        d.logger.warn({ remoteAddress: session.remoteAddress }, "message data too slow: connection closed");
        conn?.send(421, "4.4.2 Message data took too long, closing connection");
        conn?.close();
      }, d.cfg.SMTP_DATA_TIMEOUT_MS);
      deadline.unref();
      stream.once("end", () => clearTimeout(deadline));
      stream.once("error", () => clearTimeout(deadline));
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on("data", (c: Buffer) => {
        size += c.length;
        // Past the limit the rest is read and dropped, never buffered.
        if (size <= d.cfg.SMTP_MAX_MESSAGE_BYTES) chunks.push(c);
      });
      stream.on("error", (err) => cb(err));
      stream.on("end", () => {
        if (stream.sizeExceeded || size > d.cfg.SMTP_MAX_MESSAGE_BYTES) {
          return cb(reply(552, `5.3.4 Message too big: at most ${d.cfg.SMTP_MAX_MESSAGE_BYTES} bytes`));
        }
        const rcpts = targets.get(session) ?? new Map<string, Mailbox>();
        const queueId = d.newId();
        const now = new Date();
        const received = Buffer.from(
          `Received: from ${session.hostNameAppearsAs || "unknown"} (${session.remoteAddress}) by ${hostname} with ${session.secure ? "ESMTPS" : "ESMTP"} id ${queueId};\r\n\t${now.toUTCString()}\r\n`,
        );
        const raw = Buffer.concat([received, ...chunks]);
        const addresses = [...rcpts.keys()];
        publishIngest(
          d.bus,
          d.store,
          {
            v: 1,
            dedupeKey: dedupeKeyOf(Buffer.concat(chunks), addresses),
            queueId,
            receivedAt: now.toISOString(),
            remoteAddress: session.remoteAddress,
            helo: session.hostNameAppearsAs || "",
            mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
            recipients: [...rcpts.entries()].map(([address, box]) => ({ address, ...box })),
            returnPaths: [],
            size: raw.length,
          },
          raw,
          d.cfg.INGEST_INLINE_BYTES,
        ).then(
          () => (cb as (err: null, message: string) => void)(null, `2.0.0 Ok: queued as ${queueId}`),
          (err: unknown) => {
            d.logger.error({ err: (err as Error).message, queueId }, "could not record accepted mail");
            cb(reply(451, "4.3.0 Temporary failure storing the message, try again"));
          },
        );
      });
    },
  });
  return server;
}
