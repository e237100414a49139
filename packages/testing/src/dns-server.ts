import { createSocket, type Socket } from "node:dgram";
import { createServer, type Server } from "node:net";
import dnsPacket from "dns-packet";

export interface Zone {
  MX?: { exchange: string; priority: number }[];
  /** Each record is one string; long ones are split into 255-byte chunks on the wire. */
  TXT?: string[];
  A?: string[];
  AAAA?: string[];
}

const chunks = (s: string) => (s.match(/[\s\S]{1,255}/g) ?? [""]).map((c) => Buffer.from(c));

/**
 * A small authoritative DNS server on loopback (UDP and TCP on one port), serving the
 * zones a test sets, so domain verification runs real lookups through real resolvers.
 */
export class TestDnsServer {
  readonly zones = new Map<string, Zone>();
  /** Every question asked, as "TYPE name", in order. */
  readonly asked: string[] = [];
  /** Names answered with SERVFAIL, as a broken upstream would. */
  readonly failing = new Set<string>();
  private udp?: Socket;
  private tcp?: Server;
  port = 0;

  set(name: string, zone: Zone): void {
    this.zones.set(name.toLowerCase(), zone);
  }

  private answer(query: Buffer): Buffer {
    const q = dnsPacket.decode(query);
    const question = q.questions?.[0];
    const name = question?.name.toLowerCase() ?? "";
    const zone = this.zones.get(name);
    this.asked.push(`${question?.type} ${name}`);
    const answers: dnsPacket.Answer[] = [];
    if (zone && question?.type === "MX")
      for (const mx of zone.MX ?? []) answers.push({ type: "MX", name, ttl: 60, data: { exchange: mx.exchange, preference: mx.priority } });
    if (zone && question?.type === "TXT") for (const t of zone.TXT ?? []) answers.push({ type: "TXT", name, ttl: 60, data: chunks(t) });
    if (zone && question?.type === "A") for (const a of zone.A ?? []) answers.push({ type: "A", name, ttl: 60, data: a });
    if (zone && question?.type === "AAAA") for (const a of zone.AAAA ?? []) answers.push({ type: "AAAA", name, ttl: 60, data: a });
    return dnsPacket.encode({
      id: q.id,
      type: "response",
      flags: dnsPacket.AUTHORITATIVE_ANSWER | (this.failing.has(name) ? 2 : zone ? 0 : 3), // rcode 2: SERVFAIL, 3: NXDOMAIN
      questions: q.questions,
      answers,
    });
  }

  /**
   * UDP and TCP on one port number. A port free for UDP may be in use for TCP (an outgoing
   * connection of another test has it), so a pair that cannot be had is given up and
   * another tried.
   */
  async start(): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.bindBoth();
        return `127.0.0.1:${this.port}`;
      } catch (err) {
        await this.stop();
        if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE" || attempt >= 20) throw err;
      }
    }
  }

  private async bindBoth(): Promise<void> {
    this.udp = createSocket("udp4");
    this.udp.on("message", (msg, rinfo) => this.udp!.send(this.answer(msg), rinfo.port, rinfo.address));
    await new Promise<void>((resolve, reject) => {
      this.udp!.once("error", reject);
      this.udp!.bind(0, "127.0.0.1", () => resolve());
    });
    this.port = this.udp.address().port;
    this.tcp = createServer((sock) => {
      let buf = Buffer.alloc(0);
      sock.on("data", (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const len = buf.readUInt16BE(0);
          const reply = this.answer(buf.subarray(2, 2 + len));
          buf = buf.subarray(2 + len);
          const framed = Buffer.alloc(2 + reply.length);
          framed.writeUInt16BE(reply.length, 0);
          reply.copy(framed, 2);
          sock.write(framed);
        }
      });
      sock.on("error", () => undefined);
    });
    await new Promise<void>((resolve, reject) => {
      this.tcp!.once("error", reject);
      this.tcp!.listen(this.port, "127.0.0.1", () => resolve());
    });
  }

  async stop(): Promise<void> {
    try {
      this.udp?.close();
    } catch {
      // never bound, or closed already
    }
    this.udp = undefined;
    const tcp = this.tcp;
    this.tcp = undefined;
    await new Promise<void>((r) => (tcp?.listening ? tcp.close(() => r()) : r()));
  }
}
