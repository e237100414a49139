import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { PrivateNatsServer } from "@mam/testing/nats-server.ts";
import { freePort, runService, untilReady, type RunningProcess } from "@mam/testing/processes.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

/**
 * 250 means the message survives kill -9 of smtp-ingress, of the mailbox, and of
 * nats-server itself (a private one): after restart it is in the inbox exactly once.
 */
describe("accepted mail survives crashes", () => {
  const nats = new PrivateNatsServer();
  let s: Stack;
  let smtpPort: number;
  let inbox: { id: string; apiKey: string; email: string };
  const children = new Map<string, RunningProcess>();

  async function launch(name: "mailbox" | "smtp-ingress"): Promise<void> {
    const health = await freePort();
    const env: Record<string, string> = {
      ...s.iso.env,
      HEALTH_PORT: String(health),
      DB_SCHEMA: s.iso.schema(name),
      MAIL_DOMAIN: s.mailDomain,
      LOG_LEVEL: "warn",
      SMTP_PORT: String(smtpPort),
      SMTP_HOST: "127.0.0.1",
      SMTP_TLS_FILE: `/tmp/${s.iso.tag}-crash-tls.json`,
      DNS_SERVERS: "127.0.0.1:1",
    };
    const p = runService(`services/${name}/src/main.ts`, env);
    children.set(name, p);
    await untilReady(p, health, name);
  }

  async function kill9(name: string): Promise<void> {
    const p = children.get(name)!;
    p.child.kill("SIGKILL");
    await p.exited;
  }

  // The same bytes on every try (nodemailer would stamp Date per send): a resend is the same message.
  const send = (subject: string) =>
    nodemailer.createTransport({ host: "127.0.0.1", port: smtpPort, secure: false, ignoreTLS: true }).sendMail({
      from: "crash@example.com",
      to: inbox.email,
      subject,
      text: subject,
      messageId: `<${subject}@example.com>`,
      date: new Date("2026-11-30T12:00:00Z"),
    });

  /**
   * Until it is accepted, as a sending MTA does: a 4xx (the bus slow to acknowledge on a loaded
   * machine) means "try again", and the resend of the same bytes is filed once.
   */
  async function accepted(subject: string) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await send(subject);
      } catch (err) {
        if (attempt >= 5 || !/^4/.test((err as { response?: string }).response ?? "")) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  async function countOf(subject: string): Promise<number> {
    const r = await s.api("GET", `/v1/inboxes/${inbox.id}/messages?limit=100`, { key: inbox.apiKey });
    // While a service restarts the API may answer 503; that is "not yet", not zero.
    if (r.status !== 200) return -1;
    return r.body.messages.filter((m: { subject: string }) => m.subject === subject).length;
  }

  /** Arrived, and still once after a later message has arrived too. */
  async function exactlyOnce(subject: string) {
    await waitFor(async () => (await countOf(subject)) >= 1, { timeoutMs: 30_000, what: `${subject} in the inbox` });
    const marker = `${subject}-marker`;
    await accepted(marker);
    await waitFor(async () => (await countOf(marker)) === 1, { timeoutMs: 30_000, what: marker });
    expect(await countOf(subject)).toBe(1);
  }

  beforeAll(async () => {
    await nats.start();
    smtpPort = await freePort();
    s = new Stack({ logLevel: "silent", mailbox: false, natsUrl: nats.url });
    await s.start();
    await launch("mailbox");
    const t = await provisionTenant(s);
    inbox = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "crash" } })).body;
    await launch("smtp-ingress");
  }, 120_000);
  afterAll(async () => {
    for (const p of children.values()) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    await s.stop();
    await nats.stop();
  });

  it("kill -9 of smtp-ingress right after 250", async () => {
    const info = await accepted("after-ingress-kill");
    expect(info.response).toMatch(/^250/);
    await kill9("smtp-ingress");
    await launch("smtp-ingress");
    await exactlyOnce("after-ingress-kill");
  }, 90_000);

  it("kill -9 of the mailbox right after 250", async () => {
    await accepted("after-mailbox-kill");
    await kill9("mailbox");
    await launch("mailbox");
    await exactlyOnce("after-mailbox-kill");
  }, 90_000);

  it("kill -9 of nats-server right after 250", async () => {
    await accepted("after-nats-kill");
    await nats.kill();
    // With NATS gone nothing can be recorded: 451 4.3.0, so the sender retries; never a 250.
    const refused = await send("while-nats-down").then(
      () => "accepted",
      (err: { response?: string }) => err.response ?? String(err),
    );
    expect(refused).toMatch(/^451 4\.3\.0/);
    await nats.start();
    await exactlyOnce("after-nats-kill");
  }, 90_000);
});
