import { createServer, connect, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { SmtpSink } from "@mam/testing/smtp-sink.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/**
 * Between the mailbox and the relay: passes bytes both ways, and cuts the first connection
 * that carries the bytes of a message (the relay saw part of it, and never said 250).
 */
class CuttingProxy {
  cuts = 0;
  private server?: Server;
  private readonly sockets = new Set<Socket>();

  async start(target: number): Promise<number> {
    this.server = createServer((client) => {
      const relay = connect(target, "127.0.0.1");
      for (const s of [client, relay]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => undefined);
      }
      relay.pipe(client);
      client.on("data", (chunk: Buffer) => {
        if (!this.cuts && chunk.includes("Subject: ")) {
          this.cuts++;
          client.destroy();
          relay.destroy();
          return;
        }
        relay.write(chunk);
      });
      client.on("close", () => relay.destroy());
      relay.on("close", () => client.destroy());
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", () => r()));
    return (this.server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server?.close(() => r()) ?? r());
  }
}

/** Relay connections are pooled: one that dies in the middle of a message costs a retry, never the message, and sends it once. */
describe("a pooled relay connection cut in the middle of a message", () => {
  const relay = new SmtpSink();
  const proxy = new CuttingProxy();
  let s: Stack;

  beforeAll(async () => {
    await relay.start();
    const port = await proxy.start(relay.port);
    s = new Stack({ logLevel: "silent", mailboxEnv: { SMTP_RELAY_URL: `smtp://127.0.0.1:${port}?tls=none`, DELIVERY_RETRY_DELAYS_S: "1" } });
    await s.start();
  });
  afterAll(async () => {
    await s.stop();
    await proxy.stop();
    await relay.stop();
  });

  it("the message is delivered once, and the next ones go through the pool", async () => {
    const t = await provisionTenant(s);
    const inbox = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "pooled" } })).body;
    const send = async (subject: string) => {
      const r = await s.api("POST", `/v1/inboxes/${inbox.id}/send`, {
        key: inbox.apiKey,
        body: { to: "far@example.com", subject, plainBody: "x", verified: true },
      });
      expect(r.status).toBe(200);
      const get = async () => (await s.api("GET", `/v1/inboxes/${inbox.id}/messages/${r.body.id}`, { key: inbox.apiKey })).body;
      await waitFor(async () => (await get()).status === "delivered", { timeoutMs: 15_000, what: `${subject} delivered` });
    };
    await send("Cut");
    expect(proxy.cuts).toBe(1);
    for (const subject of ["Next 1", "Next 2"]) await send(subject);
    const copies = (subject: string) => relay.received.filter((m) => m.raw.toString().includes(`Subject: ${subject}\r\n`)).length;
    expect(["Cut", "Next 1", "Next 2"].map(copies)).toEqual([1, 1, 1]);
  });
});
