/**
 * The load generator of `pnpm bench:smtp`, run as its own process so that the server, not
 * the client, is what gets measured. A plain socket SMTP client: MAIL, RCPT and DATA go in
 * one pipelined write (RFC 2920), the message follows the 354, and the next transaction
 * starts on the 250. Message bytes are built once; only the headers differ per message.
 *
 * Input (argv[2], JSON): { port, to, from, count, conns, size, offset, rate? }. With `rate`
 * (messages/s for this process) the i-th message is not started before i/rate seconds after
 * the start: a steady rate instead of as fast as the server answers.
 * Protocol with the parent: prints "ready" once every connection has its EHLO answered,
 * starts on a line on stdin, and prints one JSON line of results at the end.
 */
import { connect, type Socket } from "node:net";
import { createInterface } from "node:readline";

interface Job {
  port: number;
  to: string;
  from: string;
  count: number;
  conns: number;
  size: number;
  /** Numbering of this process's messages, so Message-IDs differ across processes. */
  offset: number;
  rate?: number;
}

const job = JSON.parse(process.argv[2] ?? "{}") as Job;
const now = () => performance.timeOrigin + performance.now();

/** Reads complete SMTP replies (last line `NNN text`) off a socket, in order. */
class Replies {
  private buf = "";
  private readonly ready: string[] = [];
  private readonly waiting: ((r: string) => void)[] = [];
  private lines: string[] = [];

  constructor(socket: Socket, onError: (e: Error) => void) {
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf("\r\n")) !== -1) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 2);
        this.lines.push(line);
        if (line[3] !== "-") {
          const reply = this.lines.join("\n");
          this.lines = [];
          const w = this.waiting.shift();
          if (w) w(reply);
          else this.ready.push(reply);
        }
      }
    });
    socket.on("error", onError);
  }

  next(): Promise<string> {
    const r = this.ready.shift();
    if (r !== undefined) return Promise.resolve(r);
    return new Promise((res) => this.waiting.push(res));
  }
}

const expect = async (replies: Replies, code: string, what: string) => {
  const r = await replies.next();
  if (!r.startsWith(code)) throw new Error(`${what}: expected ${code}, got ${r}`);
};

const filler = (() => {
  const line = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n";
  return line.repeat(Math.ceil(Math.max(0, job.size - 400) / line.length)).slice(0, Math.max(0, job.size - 400));
})();

function message(i: number): Buffer {
  const n = job.offset + i;
  return Buffer.from(
    `From: Bench <${job.from}>\r\nTo: <${job.to}>\r\nSubject: bench ${n}\r\nDate: ${new Date().toUTCString()}\r\n` +
      `Message-ID: <bench-${n}-${process.pid}-${Date.now()}@bench.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n` +
      `Message ${n}\r\n${filler}\r\n.\r\n`,
    "latin1",
  );
}

async function open(): Promise<{ socket: Socket; replies: Replies }> {
  const socket = connect(job.port, "127.0.0.1");
  socket.setNoDelay(true);
  const replies = new Replies(socket, (e) => {
    process.stderr.write(`socket error: ${e.message}\n`);
    process.exit(1);
  });
  await expect(replies, "220", "greeting");
  socket.write("EHLO bench.example\r\n");
  await expect(replies, "250", "EHLO");
  return { socket, replies };
}

const sessions = await Promise.all(Array.from({ length: job.conns }, open));
process.stdout.write("ready\n");
await new Promise<void>((res) => createInterface({ input: process.stdin }).once("line", () => res()));

const sentAt: number[] = [];
const to250: number[] = [];
let next = 0;
const envelope = `MAIL FROM:<${job.from}>\r\nRCPT TO:<${job.to}>\r\nDATA\r\n`;
const started = now();
await Promise.all(
  sessions.map(async ({ socket, replies }) => {
    for (let i = next++; i < job.count; i = next++) {
      if (job.rate) {
        const due = started + (i * 1000) / job.rate;
        const wait = due - now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const data = message(i);
      const t = now();
      sentAt[i] = t;
      socket.write(envelope);
      await expect(replies, "250", "MAIL FROM");
      await expect(replies, "250", "RCPT TO");
      await expect(replies, "354", "DATA");
      socket.write(data);
      await expect(replies, "250", "end of data");
      to250[i] = now() - t;
    }
    socket.end("QUIT\r\n");
  }),
);
const finished = now();
process.stdout.write(`${JSON.stringify({ started, finished, sentAt, to250 })}\n`, () => process.exit(0));
