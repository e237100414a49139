import { connect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";

/**
 * A raw SMTP conversation for asserting exact reply codes: writes bytes as given (whole,
 * or split into small pieces) and reads complete replies, multi-line ones included.
 */
export class SmtpTranscript {
  private buffer = "";
  private waiters: (() => void)[] = [];
  private socket!: Socket;
  closed = false;

  /**
   * `from` picks the client's own address: any of 127.0.0.0/8 reaches a server on 127.0.0.1,
   * so one machine can play several remote addresses.
   */
  static async open(port: number, o: { from?: string } = {}): Promise<SmtpTranscript> {
    const t = new SmtpTranscript();
    t.attach(connect({ host: "127.0.0.1", port, ...(o.from ? { localAddress: o.from } : {}) }));
    await new Promise<void>((r, j) => t.socket.once("connect", () => r()).once("error", j));
    return t;
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      this.buffer += d;
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on("close", () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
    // A reset by the server shows as a close; the error itself is not the test's concern.
    socket.on("error", () => {});
  }

  /**
   * After the server's 220 to STARTTLS: the handshake over the same connection (any
   * certificate: the server's is self-signed), then the conversation goes on encrypted.
   */
  async startTls(): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners("data");
    const secure = tlsConnect({ socket: plain, rejectUnauthorized: false });
    this.attach(secure);
    await new Promise<void>((r, j) => secure.once("secureConnect", () => r()).once("error", j));
  }

  /** What the server sent that no `reply` has read yet. */
  get unread(): string {
    return this.buffer;
  }

  /** The next complete reply, e.g. "250-mx\r\n250 SIZE 100\r\n" → its lines. */
  async reply(timeoutMs = 10_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = this.buffer.split("\r\n");
      const end = lines.findIndex((l) => /^\d{3} /.test(l) || /^\d{3}$/.test(l));
      if (end !== -1) {
        this.buffer = lines.slice(end + 1).join("\r\n");
        return lines.slice(0, end + 1);
      }
      if (this.closed) throw new Error(`connection closed; buffer: ${this.buffer}`);
      if (Date.now() > deadline) throw new Error(`no reply; buffer: ${this.buffer}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100).unref();
      });
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Writes in pieces of 1 to `max` bytes, as a slow or hostile client would. */
  async writeChunked(data: string | Buffer, max = 17): Promise<void> {
    const b = Buffer.isBuffer(data) ? data : Buffer.from(data, "latin1");
    for (let i = 0; i < b.length; ) {
      const n = 1 + ((i * 7) % max);
      this.socket.write(b.subarray(i, i + n));
      i += n;
      if (i % 64 < n) await new Promise((r) => setImmediate(r));
    }
  }

  /** Sends a command and returns the reply's last line. */
  async command(line: string): Promise<string> {
    this.write(`${line}\r\n`);
    return (await this.reply()).at(-1)!;
  }

  close(): void {
    this.socket.destroy();
  }

  /** Resolves once the server has closed the connection (or it was closed here). */
  async closedByPeer(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error("the connection is still open");
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100).unref();
      });
    }
  }
}
