import { spawn } from "node:child_process";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lookup } from "node:dns/promises";
import { ERROR_TEXT_CAP, tenantResolve, WebhookSender } from "@mam/realtime/webhooks/sender.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { DnsServer } from "./webhook-kit.ts";

/**
 * The request a delivery attempt makes, against a real HTTP server on loopback: what counts
 * as success, redirects, answers too long or too slow, and which addresses it connects to.
 */
describe("webhook attempts", () => {
  const seen: { path: string; host: string | undefined; body: string }[] = [];
  /** Bytes the endless answer wrote before the client went away. */
  let endlessWritten = 0;
  let endlessClosed: Promise<void> = Promise.resolve();
  let server: Server;
  let port = 0;
  const body = Buffer.from('{"event":"message.received"}');
  const headers = { "x-myagentmail-event-id": "evt_test" };

  const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
    "/ok": (_q, res) => res.writeHead(204).end(),
    "/created": (_q, res) => res.writeHead(201).end("made"),
    "/moved": (_q, res) => res.writeHead(302, { location: "/target" }).end(),
    "/permanent": (_q, res) => res.writeHead(308, { location: `http://127.0.0.1:${port}/target` }).end(),
    "/target": (_q, res) => res.writeHead(200).end(),
    "/refused": (_q, res) => res.writeHead(500, { "content-type": "text/plain" }).end(`boom\r\n${"x".repeat(1_000_000)}`),
    "/silent": () => undefined,
    "/endless": (_q, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      const chunk = Buffer.alloc(64 * 1024, 120);
      endlessClosed = new Promise((done) => res.on("close", () => done()));
      const pump = () => {
        while (!res.destroyed && endlessWritten < 200 * 1024 * 1024) {
          endlessWritten += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      pump();
    },
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        seen.push({ path: req.url!, host: req.headers.host, body: Buffer.concat(chunks).toString() });
        (routes[req.url!] ?? ((_q, r) => r.writeHead(404).end()))(req, res);
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    port = (server.address() as AddressInfo).port;
  });
  const local = new WebhookSender({ timeoutMs: 1_000, allowPrivate: true });
  afterAll(async () => {
    local.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const url = (path: string, host = "127.0.0.1") => `http://${host}:${port}${path}`;
  const requestsTo = (path: string) => seen.filter((r) => r.path === path);

  it("counts any 2xx as success and sends the body as it is, as JSON, with the headers given", async () => {
    expect(await local.post(url("/ok"), body, headers)).toMatchObject({ statusCode: 204, success: true, error: null });
    expect(await local.post(url("/created"), body, headers)).toMatchObject({ statusCode: 201, success: true, error: null });
    expect(requestsTo("/ok")[0]!.body).toBe(body.toString());
  });

  it("never follows a redirect", async () => {
    for (const path of ["/moved", "/permanent"]) {
      const r = await local.post(url(path), body, headers);
      expect(r, path).toMatchObject({ statusCode: expect.any(Number), success: false, error: "redirect not followed" });
    }
    expect(requestsTo("/target")).toEqual([]);
  });

  it("keeps about 1 KiB of a refusal's answer, on one line", async () => {
    const r = await local.post(url("/refused"), body, headers);
    expect(r).toMatchObject({ statusCode: 500, success: false });
    expect(r.error).toMatch(/^HTTP 500: boom x+$/);
    expect(r.error!.length).toBeLessThanOrEqual(ERROR_TEXT_CAP + 20);
  });

  it("stops reading an answer that does not end, and does not wait for it", async () => {
    const r = await local.post(url("/endless"), body, headers);
    expect(r).toMatchObject({ statusCode: 200, success: true, error: null });
    await endlessClosed;
    expect(endlessWritten).toBeLessThan(200 * 1024 * 1024);
  });

  it("gives up on a receiver that does not answer within the timeout", async () => {
    const r = await local.post(url("/silent"), body, headers);
    expect(r).toMatchObject({ statusCode: null, success: false, error: "timed out after 1000 ms" });
  });

  it("takes an answer that came in time while this process was held up past the timeout, rather than timing it out (and sending it again)", async () => {
    // The receiver in a process of its own, so that it answers while this one is held up.
    const receiver = spawn(process.execPath, [
      "-e",
      `require("node:http").createServer((q, s) => { q.resume(); q.on("end", () => { console.log("got"); setTimeout(() => s.writeHead(200).end("ok"), 100); }); })
        .listen(0, "127.0.0.1", function () { console.log(this.address().port); });`,
    ]);
    const lines = createInterface({ input: receiver.stdout })[Symbol.asyncIterator]();
    const sender = new WebhookSender({ timeoutMs: 300, allowPrivate: true });
    try {
      const port = Number((await lines.next()).value);
      const attempt = sender.post(`http://127.0.0.1:${port}/`, body, headers);
      expect((await lines.next()).value).toBe("got");
      // Held up (a long collection, a busy replica) past the timeout; the answer comes meanwhile.
      const until = Date.now() + 1_000;
      while (Date.now() < until);
      expect(await attempt).toMatchObject({ statusCode: 200, success: true, error: null });
    } finally {
      sender.close();
      receiver.kill();
    }
  });

  it("connects to the address its own lookup checked, never resolving the name a second time", async () => {
    // `.invalid` resolves nowhere: only the sender's lookup can have given the socket an address.
    const sender = new WebhookSender({ timeoutMs: 2_000, allowPrivate: true, resolve: async () => [{ address: "127.0.0.1", family: 4 }] });
    expect(await sender.post(url("/ok", "hooks.invalid"), body, headers)).toMatchObject({ statusCode: 204, success: true });
    expect(requestsTo("/ok").at(-1)!.host).toBe(`hooks.invalid:${port}`);
    sender.close();
  });

  it("refuses private and special-use addresses, literal or resolved, without connecting", async () => {
    let answers = [
      { address: "10.0.0.7", family: 4 },
      { address: "127.0.0.1", family: 4 },
    ];
    const guarded = new WebhookSender({ timeoutMs: 2_000, allowPrivate: false, resolve: async () => answers });
    const before = seen.length;
    expect(await guarded.post(url("/ok"), body, headers)).toMatchObject({
      statusCode: null,
      success: false,
      error: "127.0.0.1 is a private or special-use address; not connected",
    });
    expect(await guarded.post(url("/ok", "[::ffff:127.0.0.1]"), body, headers)).toMatchObject({ success: false, error: expect.stringMatching(/special-use/) });
    expect(await guarded.post(url("/ok", "hooks.example.com"), body, headers)).toMatchObject({
      statusCode: null,
      success: false,
      error: "hooks.example.com resolves only to private or special-use addresses; not connected",
    });
    // Looked up again at the next attempt: a name that now points inside is refused too.
    answers = [{ address: "::1", family: 6 }];
    expect((await guarded.post(url("/ok", "hooks.example.com"), body, headers)).error).toBe(
      "hooks.example.com resolves only to private or special-use addresses; not connected",
    );
    expect(seen.length).toBe(before);
    expect((await guarded.post("ftp://hooks.example.com/x", body, headers)).error).toBe("ftp: is not http or https");
    guarded.close();
  });

  it("refuses every spelling of a loopback host, literal or named, without connecting", async () => {
    const guarded = new WebhookSender({ timeoutMs: 2_000, allowPrivate: false });
    const before = seen.length;
    for (const host of [
      "0",
      "2130706433",
      "0x7f.1",
      "127.1",
      "[::1]",
      "[::ffff:127.0.0.1]",
      "[::127.0.0.1]",
      "[0:0:0:0:0:ffff:7f00:1]",
      "localhost",
      "localhost.",
      "ⓛocalhost",
    ]) {
      expect(await guarded.post(url("/ok", host), body, headers), host).toMatchObject({ statusCode: null, success: false, error: expect.any(String) });
    }
    expect(seen.length).toBe(before);
    guarded.close();
  });

  it("goes straight to the receiver, whatever proxy the environment names", async () => {
    const proxied: string[] = [];
    const proxy = createServer((req, res) => {
      proxied.push(req.url ?? "");
      res.writeHead(200).end();
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", () => r()));
    const names = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"];
    const saved = names.map((n) => process.env[n]);
    for (const n of names) process.env[n] = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const sender = new WebhookSender({ timeoutMs: 2_000, allowPrivate: true });
    try {
      const before = requestsTo("/ok").length;
      expect(await sender.post(url("/ok"), body, headers)).toMatchObject({ statusCode: 204, success: true });
      expect(requestsTo("/ok").length).toBe(before + 1);
      expect(proxied).toEqual([]);
    } finally {
      for (const [i, n] of names.entries()) {
        if (saved[i] === undefined) delete process.env[n];
        else process.env[n] = saved[i];
      }
      sender.close();
      await new Promise((r) => proxy.close(r));
    }
  });
});

/** Host names a tenant controls, resolved by DNS (a server on loopback here). */
describe("webhook host names", () => {
  const dns = new DnsServer();
  let server: Server;
  let port = 0;
  const body = Buffer.from("{}");
  beforeAll(async () => {
    await dns.start();
    server = createServer((_q, res) => res.writeHead(200).end());
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    dns.stop();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it("resolves a name by DNS and checks what it resolved to", async () => {
    dns.a.set("hooks.customer.example", "127.0.0.1");
    const open = new WebhookSender({ timeoutMs: 2_000, allowPrivate: true, resolve: tenantResolve([dns.server]) });
    expect(await open.post(`http://hooks.customer.example:${port}/`, body, {})).toMatchObject({ statusCode: 200, success: true });
    const guarded = new WebhookSender({ timeoutMs: 2_000, allowPrivate: false, resolve: tenantResolve([dns.server]) });
    expect(await guarded.post(`http://hooks.customer.example:${port}/`, body, {})).toMatchObject({
      statusCode: null,
      error: "hooks.customer.example resolves only to private or special-use addresses; not connected",
    });
    open.close();
    guarded.close();
  });

  it("waits for name servers that never answer without holding a thread every other lookup needs", async () => {
    dns.silent.add("hooks.blackhole.example");
    const sender = new WebhookSender({ timeoutMs: 3_000, allowPrivate: true, resolve: tenantResolve([dns.server]) });
    let ended = 0;
    // More than libuv's pool has threads (4): getaddrinfo would hold all of them until it gave up.
    const attempts = Array.from({ length: 12 }, () => sender.post(`http://hooks.blackhole.example:${port}/`, body, {}).finally(() => ended++));
    await waitFor(() => dns.asked.filter((n) => n === "hooks.blackhole.example").length >= 12, { timeoutMs: 2_000, what: "the queries asked" });
    // A lookup on the thread pool (/etc/hosts) is answered while every one of them still waits.
    expect((await lookup("localhost")).address).toMatch(/^(127\.0\.0\.1|::1)$/);
    expect(ended).toBe(0);
    for (const r of await Promise.all(attempts)) expect(r).toMatchObject({ statusCode: null, success: false });
    sender.close();
  });
});
