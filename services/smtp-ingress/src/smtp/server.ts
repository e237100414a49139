import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from "smtp-server";
import type { ObjectStore } from "@nats-io/obj";
import type { Bus } from "@mam/bus/connection.ts";
import { addLogContext, withLogContext } from "@mam/runtime/log-context.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import type { SmtpIngressConfig } from "../config.ts";
import { ConnectionAdmission } from "./admission.ts";
import { BufferBudget } from "./buffer-budget.ts";
import { UnknownRecipientRate } from "./guesses.ts";
import { ClaimsLookup } from "./claims-lookup.ts";
import type { Directory, Mailbox } from "./directory.ts";
import { dedupeKeyOf, publishIngest } from "./ingest.ts";
import { readMessageData } from "./message-data.ts";
import type { SmtpObserver } from "./metrics.ts";
import { withAsciiReplies } from "./reply-text.ts";
import { admitRcpt, decideRcpt, newTransaction, type RcptDecision, type Transaction } from "./recipients.ts";
import type { TlsMaterial } from "./tls.ts";

type Callback = (err?: Error | null) => void;
/** onData's callback takes the 250's text too (absent from the typings). */
type DataCallback = (err: Error | null, message?: string) => void;

/** What smtp-server's live connections offer (public methods, absent from its typings). */
interface LiveConnection {
  session: SMTPServerSession;
  /** `message` a line, or the lines of a multi-line reply; `context` picks an enhanced code (false: none). */
  send(code: number, message?: string | string[], context?: string | false): void;
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
  observer?: SmtpObserver;
}

/**
 * The door for the world's mail: accepts mail for the platform's addresses only, caps
 * every size and count, and answers 250 only once the message is durably recorded.
 */
export function createSmtpServer(d: SmtpDeps): SMTPServer {
  const hostname = d.cfg.SMTP_HOSTNAME ?? `mx.${d.cfg.MAIL_DOMAIN}`;
  const admission = new ConnectionAdmission(d.cfg.SMTP_MAX_CLIENTS_PER_IP, d.cfg.SMTP_MAX_CLIENTS);
  const budget = new BufferBudget(d.cfg.SMTP_MAX_BUFFERED_BYTES);
  const claims = new ClaimsLookup(d.bus, d.logger);
  /**
   * RCPTs of each connection refused as unknown since it last delivered a message (see
   * SMTP_MAX_UNKNOWN_RECIPIENTS). Past the limit the connection is closed, at its next MAIL or
   * unknown RCPT; but a message that has recipients already may name up to
   * SMTP_MAX_RECIPIENTS unknown ones (a list's mail to some deleted inboxes still goes).
   */
  const unknowns = new WeakMap<SMTPServerSession, number>();
  const tooManyUnknown = () => reply(421, "4.7.0 Too many unknown recipients, closing connection");
  /** And per client address across its connections (see UnknownRecipientRate). */
  const guesses = new UnknownRecipientRate(d.cfg.SMTP_MAX_UNKNOWN_RECIPIENTS_PER_IP, d.cfg.SMTP_UNKNOWN_RECIPIENTS_WINDOW_S * 1000);
  const guessing = () => reply(421, "4.7.0 Too many unknown recipients from your address, try again later");
  const transactions = new WeakMap<SMTPServerSession, Transaction>();
  const transactionOf = (session: SMTPServerSession) => {
    let txn = transactions.get(session);
    if (!txn) transactions.set(session, (txn = newTransaction()));
    return txn;
  };

  /**
   * An address the directory lacks. The directory follows the mailbox's events by a moment,
   * and a command's events reach the stream after it commits: the mailbox's read model, which
   * holds what was committed, is asked (answered in a few milliseconds). When it cannot say
   * (the mailbox down, its read model being rebuilt), the stream decides: refused once the
   * directory is known to hold every event stored until now.
   */
  const missed = async (address: string, decide: (lookup?: (a: string) => Mailbox | undefined) => RcptDecision): Promise<RcptDecision> => {
    const claimed = await claims.of(address).catch(() => undefined);
    if (claimed !== undefined) return decide(() => claimed ?? undefined);
    if (!(await d.directory.current())) return { kind: "refuse", code: 451, text: "4.4.3 Address directory is behind, try again shortly" };
    return decide();
  };

  const server: SMTPServer = withAsciiReplies(
    new SMTPServer({
      name: hostname,
      banner: "agent mail ESMTP",
      size: d.cfg.SMTP_MAX_MESSAGE_BYTES,
      key: d.tls.key,
      cert: d.tls.cert,
      authOptional: true,
      disabledCommands: ["AUTH"],
      disableReverseLookup: true,
      // Counts every open connection, those not yet greeted too; refused ones leave it at once.
      // A backstop only: the caps are counted in onConnect, which answers with an enhanced code.
      // Above it smtp-server refuses on its own (421 without one) before asking us.
      maxClients: Math.max(2 * d.cfg.SMTP_MAX_CLIENTS, d.cfg.SMTP_MAX_CLIENTS + 100),
      socketTimeout: d.cfg.SMTP_IDLE_TIMEOUT_MS,
      closeTimeout: 10_000,
      logger: false,
      onConnect(session, cb: Callback) {
        if (guesses.over(session.remoteAddress)) return cb(guessing());
        const refusal = admission.admit(session);
        if (refusal === "address") return cb(reply(421, "4.7.0 Too many connections from your address, try later"));
        if (refusal === "total") return cb(reply(421, "4.7.0 Too many connections, try later"));
        cb();
      },
      onClose(session) {
        admission.release(session);
      },
      onMailFrom(address: SMTPServerAddress, session, cb: Callback) {
        if ((unknowns.get(session) ?? 0) > d.cfg.SMTP_MAX_UNKNOWN_RECIPIENTS) return cb(tooManyUnknown());
        if (guesses.over(session.remoteAddress)) return cb(guessing());
        transactions.set(session, newTransaction());
        // A size declared up front (RFC 1870) that cannot be held now is refused before the data is sent.
        const args = address.args as Record<string, string | undefined> | false;
        const declared = args ? Number(args.SIZE ?? 0) : 0;
        if (declared > budget.cap - budget.inUse) return cb(reply(452, "4.3.1 Insufficient system storage, try again later"));
        cb();
      },
      onRcptTo(address: SMTPServerAddress, session, cb: Callback) {
        const txn = transactionOf(session);
        // Known addresses too: answering those while refusing the rest would still tell which
        // exist. A message that has recipients already goes on (as SMTP_MAX_UNKNOWN_RECIPIENTS
        // allows it): a list's mail to many deleted inboxes is not cut off, and the next is refused.
        if (!txn.recipients.size && guesses.over(session.remoteAddress)) return cb(guessing());
        const decide = (lookup = (a: string) => d.directory.lookup(a)) =>
          decideRcpt({
            address: address.address,
            nullSender: !!session.envelope.mailFrom && session.envelope.mailFrom.address === "",
            txn,
            maxRecipients: d.cfg.SMTP_MAX_RECIPIENTS,
            mailDomain: d.cfg.MAIL_DOMAIN,
            directoryReady: d.directory.ready,
            lookup,
          });
        const answer = (decision: RcptDecision) => {
          if (decision.kind === "refuse" && decision.unknown) {
            if (guesses.note(session.remoteAddress) && !txn.recipients.size) {
              d.logger.warn({ remoteAddress: session.remoteAddress }, "client address refused for a while: too many unknown recipients across its connections");
              return cb(guessing());
            }
            const count = (unknowns.get(session) ?? 0) + 1;
            unknowns.set(session, count);
            const cap = txn.recipients.size ? Math.max(d.cfg.SMTP_MAX_UNKNOWN_RECIPIENTS, d.cfg.SMTP_MAX_RECIPIENTS) : d.cfg.SMTP_MAX_UNKNOWN_RECIPIENTS;
            if (count > cap) {
              d.logger.info({ remoteAddress: session.remoteAddress, unknown: count }, "connection closed: too many unknown recipients");
              return cb(tooManyUnknown());
            }
          }
          if (decision.kind === "refuse") return cb(reply(decision.code, decision.text));
          admitRcpt(txn, decision);
          cb();
        };
        const decision = decide();
        if (decision.kind !== "refuse" || !decision.unknown) return answer(decision);
        void missed(address.address, decide).then(answer);
      },
      onData(stream: SMTPServerDataStream, session, cb: Callback) {
        // The message's lines carry the SMTP session's id, and its queue id once it has one (see record).
        withLogContext({ sessionId: session.id }, () => {
          const stopDeadline = dataDeadline(server, session, d);
          readMessageData(stream, d.cfg.SMTP_MAX_MESSAGE_BYTES, budget).then(
            async (data) => {
              stopDeadline();
              if (data.outcome === "too-big") return cb(reply(552, `5.3.4 Message too big: at most ${d.cfg.SMTP_MAX_MESSAGE_BYTES} bytes`));
              if (data.outcome === "no-room") {
                d.logger.warn({ remoteAddress: session.remoteAddress, size: data.size, cap: budget.cap }, "message refused: buffer budget full");
                return cb(reply(452, "4.3.1 Insufficient system storage, try again later"));
              }
              let answer: string | Error;
              try {
                answer = await record(d, session, transactionOf(session), data, hostname);
              } catch (err) {
                d.logger.error({ err: (err as Error).message, remoteAddress: session.remoteAddress }, "could not record accepted mail");
                answer = reply(451, "4.3.0 Temporary failure storing the message, try again");
              }
              // Recorded or not, the bytes are no longer held: released before the client hears.
              data.reservation.release();
              if (answer instanceof Error) return cb(answer);
              // A sender that delivers is no guesser: its unknown recipients are counted afresh.
              unknowns.delete(session);
              (cb as DataCallback)(null, answer);
            },
            (err: Error) => {
              stopDeadline();
              cb(err);
            },
          );
        });
      },
    }),
    d.observer,
  );
  return server;
}

/** Publishes a message the client sent in full; resolves with the 250 reply's text. */
async function record(
  d: SmtpDeps,
  session: SMTPServerSession,
  txn: Transaction,
  data: { chunks: Buffer[]; size: number; contentHash: string },
  hostname: string,
): Promise<string> {
  const queueId = d.newId();
  addLogContext({ queueId });
  const now = new Date();
  const head = Buffer.from(
    `Received: from ${session.hostNameAppearsAs || "unknown"} (${session.remoteAddress}) by ${hostname} with ${session.secure ? "ESMTPS" : "ESMTP"} id ${queueId};\r\n\t${now.toUTCString()}\r\n`,
  );
  // null for the null reverse-path (`MAIL FROM:<>`), which smtp-server gives as "".
  const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address || null : null;
  const returnPaths = [...txn.returnPaths.entries()].map(([address, token]) => ({ address, token }));
  await publishIngest(
    d.bus,
    d.store,
    {
      v: 1,
      dedupeKey: dedupeKeyOf({
        mailFrom: mailFrom ?? "",
        recipients: [...txn.recipients.keys()],
        returnPaths: returnPaths.map((r) => r.address),
        contentHash: data.contentHash,
      }),
      queueId,
      receivedAt: now.toISOString(),
      remoteAddress: session.remoteAddress,
      helo: session.hostNameAppearsAs || "",
      mailFrom,
      recipients: [...txn.recipients.entries()].map(([address, box]) => ({ address, ...box })),
      returnPaths,
      size: head.length + data.size,
    },
    { head, chunks: data.chunks, size: head.length + data.size },
    d.cfg.INGEST_INLINE_BYTES,
    d.logger,
  );
  d.logger.debug({ queueId, recipients: txn.recipients.size, returnPaths: returnPaths.length, size: head.length + data.size }, "mail accepted");
  return `2.0.0 Ok: queued as ${queueId}`;
}

/**
 * A sender that trickles a byte now and then never trips the idle timeout: the data as a
 * whole has a deadline. Returns what stops it.
 */
function dataDeadline(server: SMTPServer, session: SMTPServerSession, d: SmtpDeps): () => void {
  const timer = setTimeout(() => {
    const conn = [...(server as unknown as { connections: Set<LiveConnection> }).connections].find((c) => c.session === session);
    d.logger.warn({ remoteAddress: session.remoteAddress }, "message data too slow: connection closed");
    conn?.send(421, "4.4.2 Message data took too long, closing connection");
    conn?.close();
  }, d.cfg.SMTP_DATA_TIMEOUT_MS);
  timer.unref();
  return () => clearTimeout(timer);
}
