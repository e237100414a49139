import { rmSync } from "node:fs";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "@mam/runtime/wait.ts";
import { PrivatePostgresServer } from "@mam/testing/postgres-server.ts";
import { freePort, runService, type RunningProcess } from "@mam/testing/processes.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

interface Inbox {
  id: string;
  apiKey: string;
  email: string;
}

/**
 * smtp-ingress answers 250 once JetStream holds the message, never touching Postgres; the
 * mailbox files it into Postgres later. So a Postgres outage delays mail and loses none:
 * once the database is back, every accepted message is in its inbox exactly once, and the
 * mailbox carries on without a restart. The mailbox runs on a private cluster, the only
 * one a test may stop; identity and the gateway stay on the shared servers.
 */
describe("accepted mail survives a PostgreSQL outage", () => {
  const postgres = new PrivatePostgresServer();
  let s: Stack | undefined;
  let smtpPort: number;
  let mailboxHealth: number;
  let quiet: Inbox;
  let busy: Inbox;
  const children = new Map<string, RunningProcess>();

  const tlsFile = () => `/tmp/${s!.iso.tag}-outage-tls.json`;
  const ready = (port: number) =>
    fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );

  async function launch(name: "mailbox" | "smtp-ingress", own: Record<string, string>): Promise<number> {
    const health = await freePort();
    const p = runService(`services/${name}/src/main.ts`, {
      ...s!.iso.env,
      ...own,
      HEALTH_PORT: String(health),
      MAIL_DOMAIN: s!.mailDomain,
      LOG_LEVEL: "warn",
      DNS_SERVERS: "127.0.0.1:1",
    });
    children.set(name, p);
    await waitFor(() => ready(health), { timeoutMs: 30_000, intervalMs: 100, what: `${name} ready (${p.stderr()})` });
    return health;
  }

  /** Fails the wait at once, with the reason, if the mailbox process died. */
  function mailbox(): RunningProcess {
    const p = children.get("mailbox")!;
    if (p.child.exitCode !== null || p.child.signalCode !== null) {
      const why =
        p
          .stderr()
          .split("\n")
          .find((l) => /^\w*error\b/i.test(l)) ?? "";
      throw new Error(`the mailbox exited (${p.child.exitCode ?? p.child.signalCode}): ${why}\n${p.stderr().slice(0, 1_500)}`);
    }
    return p;
  }

  const send = (to: Inbox, subject: string, transport = nodemailer.createTransport({ host: "127.0.0.1", port: smtpPort, secure: false, ignoreTLS: true })) =>
    transport.sendMail({ from: "outage@example.com", to: to.email, subject, text: subject, messageId: `<${subject}@example.com>` });

  /** The inbox's subjects, or undefined while the API cannot answer (it reads Postgres too). */
  async function subjects(of: Inbox): Promise<string[] | undefined> {
    const r = await s!.api("GET", `/v1/inboxes/${of.id}/messages?limit=100`, { key: of.apiKey });
    if (r.status !== 200) return undefined;
    return r.body.messages.map((m: { subject: string }) => m.subject);
  }

  async function allArrived(of: Inbox, expected: string[]): Promise<boolean> {
    mailbox();
    const got = new Set(await subjects(of));
    return expected.every((x) => got.has(x));
  }

  beforeAll(async () => {
    await postgres.start();
    smtpPort = await freePort();
    s = new Stack({ logLevel: "silent", mailbox: false });
    await s.start();
    mailboxHealth = await launch("mailbox", { DATABASE_URL: postgres.url, DB_SCHEMA: "mailbox" });
    const t = await provisionTenant(s);
    quiet = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "quiet" } })).body;
    busy = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "busy" } })).body;
    await launch("smtp-ingress", { SMTP_PORT: String(smtpPort), SMTP_HOST: "127.0.0.1", SMTP_TLS_FILE: tlsFile() });
  }, 60_000);

  afterAll(async () => {
    for (const p of children.values()) {
      if (p.child.exitCode === null) p.child.kill("SIGKILL");
      await p.exited;
    }
    if (s) rmSync(tlsFile(), { force: true });
    await s?.stop();
    await postgres.destroy();
  });

  it("250 while the mailbox's database is down; each message filed once when it is back", async () => {
    expect((await send(quiet, "before-outage")).response).toMatch(/^250/);
    await waitFor(() => allArrived(quiet, ["before-outage"]), { timeoutMs: 10_000, what: "before-outage in the inbox" });

    await postgres.stop();
    const during = ["during-outage-1", "during-outage-2", "during-outage-3", "during-outage-4", "during-outage-5"];
    for (const subject of during) expect((await send(quiet, subject)).response).toMatch(/^250/);
    expect(await subjects(quiet)).toBeUndefined();

    // Outlast the mailbox's retries in place, so every message goes back to JetStream with a
    // backoff: the path a longer outage takes.
    const handedBack = () =>
      mailbox()
        .stdout()
        .split("\n")
        .filter((l) => l.includes("will retry later")).length;
    await waitFor(() => handedBack() >= during.length, { timeoutMs: 20_000, intervalMs: 100, what: "the mailbox handing every message back for later" });

    await postgres.start();
    await waitFor(() => ready(mailboxHealth), { timeoutMs: 10_000, intervalMs: 100, what: "the mailbox ready again without a restart" });
    await waitFor(() => allArrived(quiet, during), { timeoutMs: 20_000, intervalMs: 100, what: "the messages accepted during the outage in the inbox" });

    // A message sent after the outage arrives too, and once it has, nothing arrived twice.
    expect((await send(quiet, "after-outage")).response).toMatch(/^250/);
    await waitFor(() => allArrived(quiet, ["after-outage"]), { timeoutMs: 10_000, what: "after-outage in the inbox" });
    expect((await subjects(quiet))!.sort()).toEqual(["after-outage", "before-outage", ...during].sort());
  }, 60_000);

  it("Postgres going down while the mailbox is filing: it carries on, nothing lost or doubled", async () => {
    const burst = Array.from({ length: 60 }, (_, i) => `burst-${i}`);
    const transport = nodemailer.createTransport({ host: "127.0.0.1", port: smtpPort, secure: false, ignoreTLS: true, pool: true, maxConnections: 4 });
    try {
      const replies = burst.map((subject) => send(busy, subject, transport).then((info) => info.response));
      // Sessions the mailbox holds in the middle of a transaction are cut, not only idle ones.
      await waitFor(async () => ((await subjects(busy))?.length ?? 0) >= 3, { timeoutMs: 10_000, intervalMs: 10, what: "the mailbox filing the burst" });
      await postgres.stop();
      for (const r of await Promise.all(replies)) expect(r).toMatch(/^250/);
      await postgres.start();
    } finally {
      transport.close();
    }
    await waitFor(() => allArrived(busy, burst), { timeoutMs: 30_000, intervalMs: 100, what: "every message of the burst in the inbox" });
    expect((await subjects(busy))!.sort()).toEqual([...burst].sort());
    expect(await ready(mailboxHealth)).toBe(true);
  }, 60_000);
});
