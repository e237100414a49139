import { SMTPServer } from "smtp-server";

export interface Received {
  from: string;
  to: string[];
  raw: Buffer;
  /** The name the client gave in HELO/EHLO. */
  helo: string;
  /** Whether the session was encrypted (STARTTLS or implicit TLS) when the message came. */
  secure: boolean;
}

export interface SinkOptions {
  /**
   * Offer STARTTLS, with smtp-server's built-in self-signed certificate (for "localhost"):
   * a client that verifies certificates fails its handshake.
   */
  starttls?: boolean;
}

/**
 * An SMTP server on loopback standing in for the outbound relay or an MX: it accepts
 * everything (or refuses recipients a test names, with a permanent 550, or greylists them:
 * 451 the first time) and keeps the exact bytes, with the HELO name and whether TLS was on.
 */
export class SmtpSink {
  readonly received: Received[] = [];
  readonly refuse = new Set<string>();
  /** Recipients greylisted: their first RCPT gets 451 4.7.1, a later one is accepted. */
  readonly greylist = new Set<string>();
  readonly rcptTries = new Map<string, number>();
  /** Connections accepted, from anyone. */
  connections = 0;
  private server?: SMTPServer;
  port = 0;

  constructor(private readonly o: SinkOptions = {}) {}

  /**
   * The URL to use as SMTP_RELAY_URL: without STARTTLS on offer it says `tls=none`, as a
   * relay that speaks no TLS must be configured.
   */
  async start(): Promise<string> {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: this.o.starttls ? [] : ["STARTTLS"],
      disableReverseLookup: true,
      logger: false,
      onConnect: (_session, cb) => {
        this.connections++;
        cb();
      },
      onRcptTo: (addr, _session, cb) => {
        const a = addr.address.toLowerCase();
        const tries = (this.rcptTries.get(a) ?? 0) + 1;
        this.rcptTries.set(a, tries);
        if (this.refuse.has(a)) return cb(Object.assign(new Error("5.1.1 no such user"), { responseCode: 550 }));
        if (this.greylist.has(a) && tries === 1) return cb(Object.assign(new Error("4.7.1 Greylisted, try again later"), { responseCode: 451 }));
        cb();
      },
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => {
          this.received.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks),
            helo: session.hostNameAppearsAs,
            secure: session.secure,
          });
          cb();
        });
      },
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", () => r()));
    this.port = (this.server.server.address() as { port: number }).port;
    return `smtp://127.0.0.1:${this.port}${this.o.starttls ? "" : "?tls=none"}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.server?.close(() => r()) ?? r());
  }
}
