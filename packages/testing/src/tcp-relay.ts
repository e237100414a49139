import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";

/**
 * A TCP relay in front of a server (NATS), for what a real link does: hold what the server
 * sends and pass it on later in order (a slow or distant server), or drop it and then cut every
 * connection (a link that fails mid-answer). What clients send always goes through.
 */
export class TcpRelay {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private held?: [Socket, Buffer][];
  private dropping = false;

  constructor(target: URL) {
    this.server = createServer((client) => {
      const upstream = tcpConnect(Number(target.port), target.hostname);
      for (const sock of [client, upstream]) {
        this.sockets.add(sock);
        sock.on("error", () => sock.destroy());
        sock.on("close", () => this.sockets.delete(sock));
      }
      client.on("data", (d) => upstream.write(d));
      upstream.on("data", (d: Buffer) => {
        if (this.dropping) return;
        if (this.held) this.held.push([client, d]);
        else client.write(d);
      });
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
  }

  /** Listens on a port of its own; resolves with the URL clients connect to. */
  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `nats://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  /** Holds what the server sends from now, until release. */
  hold(): void {
    this.held ??= [];
  }

  /** Passes on what was held, in order, and everything after it. */
  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const [sock, d] of held) sock.write(d);
  }

  /** Drops what the server sends from now, cuts every connection `afterMs` later, then passes everything again. */
  cut(afterMs: number): void {
    this.dropping = true;
    setTimeout(() => {
      for (const sock of this.sockets) sock.destroy();
      this.dropping = false;
    }, afterMs);
  }

  close(): Promise<void> {
    for (const sock of this.sockets) sock.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
