import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { INGEST_META_HEADER, IngestMeta, ingestSubject } from "@mam/contracts/ingest.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { loadConfig as smtpConfig } from "@mam/smtp-ingress/config.ts";
import { SmtpIngressService } from "@mam/smtp-ingress/service.ts";
import { openRawStore } from "@mam/smtp-ingress/smtp/ingest.ts";
import { SmtpTranscript } from "@mam/testing/smtp-transcript.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

const PER_IP = 3;
const MAX_MESSAGE = 200_000;
const INLINE = 2_000;
const UNKNOWN = 4;

/** A message body of about `bytes` bytes, in lines of 80 (no line starts with a dot). */
const filler = (bytes: number, seed = "x") => `${seed.repeat(78).slice(0, 78)}\r\n`.repeat(Math.ceil(bytes / 80));

describe("SMTP door: connections, memory, deduplication, return paths", () => {
  let s: Stack;
  let nc: NatsConnection;
  let port: number;
  let inbox: { id: string; apiKey: string; email: string };
  /** What smtp-ingress published on the ingest subject (a plain subscriber sees every publish, duplicates too). */
  const carried: IngestMeta[] = [];
  const carriedOf = async (queueId: string) => {
    await waitFor(() => carried.some((m) => m.queueId === queueId), { timeoutMs: 5_000, what: `${queueId} on the ingest subject` });
    return carried.find((m) => m.queueId === queueId)!;
  };

  const messages = async () =>
    (await s.api("GET", `/v1/inboxes/${inbox.id}/messages?direction=inbound&limit=100`, { key: inbox.apiKey })).body.messages as {
      id: string;
      subject: string;
      plainBody: string | null;
    }[];
  const raw = async (id: string) =>
    Buffer.from(
      await (
        await fetch(`http://127.0.0.1:${s.gateways[0]!.port}/v1/inboxes/${inbox.id}/messages/${id}/raw`, { headers: { "x-api-key": inbox.apiKey } })
      ).arrayBuffer(),
    );

  /** Opens `n` connections at once from `from`; each with the first line it was told. */
  const openMany = (n: number, from: string, at = port) =>
    Promise.all(
      Array.from({ length: n }, async () => {
        const t = await SmtpTranscript.open(at, { from });
        return { t, first: (await t.reply())[0]! };
      }),
    );
  type Opened = Awaited<ReturnType<typeof openMany>>;
  const greeted = (cs: Opened) => cs.filter((c) => c.first.startsWith("220 "));
  const refused = (cs: Opened) => cs.filter((c) => !c.first.startsWith("220 "));
  /** True when `n` new connections from `from` are all greeted; they are closed again either way. */
  const allGreeted = async (n: number, from: string, at = port) => {
    const cs = await openMany(n, from, at);
    for (const c of cs) c.t.close();
    return greeted(cs).length === n;
  };

  const session = async (from?: string) => {
    const t = await SmtpTranscript.open(port, { from });
    expect((await t.reply())[0]).toMatch(/^220 /);
    expect(await t.command("EHLO door.example")).toMatch(/^250/);
    return t;
  };
  /** One transaction; resolves with the reply to the final dot. */
  const transaction = async (t: SmtpTranscript, mailFrom: string, rcpts: string[], message: string) => {
    expect(await t.command(`MAIL FROM:<${mailFrom}>`)).toMatch(/^250/);
    for (const r of rcpts) expect(await t.command(`RCPT TO:<${r}>`)).toMatch(/^250/);
    expect(await t.command("DATA")).toMatch(/^354/);
    t.write(Buffer.from(`${message}.\r\n`, "latin1"));
    return (await t.reply(20_000)).at(-1)!;
  };
  /** Another smtp-ingress on the same platform, with limits of its own (the caller destroys it). */
  const secondDoor = async (limits: Record<string, string>) => {
    const door = new SmtpIngressService(
      smtpConfig({
        ...s.iso.env,
        SMTP_PORT: "0",
        SMTP_HOST: "127.0.0.1",
        MAIL_DOMAIN: s.mailDomain,
        SMTP_TLS_FILE: `/tmp/${s.iso.tag}-smtp-tls.json`,
        ...limits,
      }),
      { logger: createLogger("smtp-ingress", "warn", s.logs) },
    );
    await door.start();
    return door;
  };
  const queueIdOf = (reply: string) => /queued as (\S+)/.exec(reply)![1]!;

  beforeAll(async () => {
    s = new Stack({
      logLevel: "warn",
      smtp: true,
      smtpEnv: {
        SMTP_MAX_CLIENTS_PER_IP: String(PER_IP),
        SMTP_MAX_UNKNOWN_RECIPIENTS: String(UNKNOWN),
        SMTP_MAX_MESSAGE_BYTES: String(MAX_MESSAGE),
        // As small as allowed: one message of the largest size, or two smaller ones.
        SMTP_MAX_BUFFERED_BYTES: String(MAX_MESSAGE),
        INGEST_INLINE_BYTES: String(INLINE),
        DIRECTORY_SNAPSHOT_WAIT_MS: "1000",
      },
    });
    await s.start();
    port = s.smtp!.port;
    nc = await connect({ servers: s.iso.urls.NATS_URL });
    nc.subscribe(ingestSubject(s.iso.prefix), {
      callback: (_err, m) => {
        const h = m.headers?.get(INGEST_META_HEADER);
        if (h) carried.push(IngestMeta.parse(JSON.parse(h)));
      },
    });
    await nc.flush();
    const t = await provisionTenant(s, "Door");
    inbox = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "door" } })).body;
    await waitFor(
      async () => {
        const c = await session();
        await c.command("MAIL FROM:<p@example.com>");
        const r = await c.command(`RCPT TO:<${inbox.email}>`);
        c.close();
        return r.startsWith("250");
      },
      { timeoutMs: 5_000, what: "the directory" },
    );
  });
  afterAll(async () => {
    await nc?.close();
    await s.stop();
  });

  it(`per address: of ${3 * PER_IP} connections ${PER_IP} are greeted, the rest told 421 4.7.0 and closed; refusals free no slot`, async () => {
    const from = "127.0.0.2";
    const first = await openMany(3 * PER_IP, from);
    expect(greeted(first)).toHaveLength(PER_IP);
    for (const c of refused(first)) expect(c.first).toMatch(/^421 4\.7\.0/);
    await Promise.all(refused(first).map((c) => c.t.closedByPeer()));

    // The refused ones are gone; the accepted ones still hold every slot, round after round.
    for (let round = 0; round < 2; round++) {
      const more = await openMany(PER_IP, from);
      expect(greeted(more)).toHaveLength(0);
      await Promise.all(more.map((c) => c.t.closedByPeer()));
    }
    // Another address is not affected.
    expect(await allGreeted(PER_IP, "127.0.0.9")).toBe(true);

    for (const c of greeted(first)) c.t.close();
    await waitFor(() => allGreeted(PER_IP, from), { timeoutMs: 5_000, what: "the slots freed" });
    // Exactly the cap again: not one more.
    const again = await openMany(PER_IP + 1, from);
    expect(greeted(again)).toHaveLength(PER_IP);
    for (const c of again) c.t.close();
  });

  it("in all (SMTP_MAX_CLIENTS): at most the cap are greeted, the rest told 421 and closed; refusals free no slot, in all or per address", async () => {
    const total = 4;
    const perIp = 2;
    const other = await secondDoor({ SMTP_MAX_CLIENTS: String(total), SMTP_MAX_CLIENTS_PER_IP: String(perIp) });
    const [x, y, z] = ["127.0.0.3", "127.0.0.4", "127.0.0.5"];
    try {
      const fromX = await openMany(perIp, x, other.port);
      const fromY = await openMany(perIp, y, other.port);
      expect(greeted([...fromX, ...fromY])).toHaveLength(total);

      // Full: everyone is refused, from a new address as from one that holds slots, round after round.
      for (let round = 0; round < 2; round++) {
        const more = [...(await openMany(3 * total, z, other.port)), ...(await openMany(perIp, x, other.port))];
        expect(greeted(more)).toHaveLength(0);
        for (const c of more) expect(c.first).toMatch(/^421 4\.7\.0 Too many connections/);
        await Promise.all(more.map((c) => c.t.closedByPeer()));
      }

      // Y leaves: room in all, but X still holds its own cap (the refusals above freed none of it).
      for (const c of fromY) c.t.close();
      let answer = "";
      await waitFor(
        async () => {
          const [c] = await openMany(1, x, other.port);
          c!.t.close();
          answer = c!.first;
          return !/^421 4\.7\.0 Too many connections, /.test(answer);
        },
        { timeoutMs: 5_000, what: "Y's slots freed in all" },
      );
      expect(answer).toMatch(/^421 4\.7\.0 Too many connections from your address/);
      // And exactly Y's slots are free in all.
      const byZ = (await Promise.all([openMany(perIp, z, other.port), openMany(perIp, "127.0.0.6", other.port)])).flat();
      expect(greeted(byZ)).toHaveLength(total - perIp);
      for (const c of [...byZ, ...fromX]) c.t.close();
      await waitFor(async () => (await Promise.all([allGreeted(perIp, y, other.port), allGreeted(perIp, z, other.port)])).every(Boolean), {
        timeoutMs: 5_000,
        what: "every slot freed",
      });
    } finally {
      await other.destroy();
    }
  });

  it("memory: a message the buffer budget cannot hold is refused with 452 4.3.1; the bytes come back when messages end, however they end", async () => {
    const header = (subject: string) => `From: a@example.com\r\nTo: ${inbox.email}\r\nSubject: ${subject}\r\n\r\n`;
    // A holds 150 kB of a message still arriving.
    const a = await session();
    expect(await a.command("MAIL FROM:<a@example.com>")).toMatch(/^250/);
    expect(await a.command(`RCPT TO:<${inbox.email}>`)).toMatch(/^250/);
    expect(await a.command("DATA")).toMatch(/^354/);
    a.write(header("held") + filler(150_000));

    // 100 kB more does not fit beside it (until A's bytes have all arrived, it may).
    const b = await session();
    let refusal = "";
    await waitFor(
      async () => {
        refusal = await transaction(b, "b@example.com", [inbox.email], header("squeezed") + filler(100_000));
        return !refusal.startsWith("250");
      },
      { timeoutMs: 5_000, what: "the budget to be full" },
    );
    expect(refusal).toMatch(/^452 4\.3\.1/);
    expect(await b.command("RSET")).toMatch(/^250/);
    // Declared up front (SIZE): refused before a byte of it is sent.
    expect(await b.command("MAIL FROM:<b@example.com> SIZE=100000")).toMatch(/^452 4\.3\.1/);
    expect(await b.command("RSET")).toMatch(/^250/);

    // A ends its message: recorded, and its bytes are free before it hears 250.
    a.write(".\r\n");
    expect((await a.reply(20_000))[0]).toMatch(/^250 /);
    expect(await transaction(b, "b@example.com", [inbox.email], header("after held") + filler(190_000))).toMatch(/^250 /);

    // Too big: refused, and what it held is free at once.
    expect(await transaction(b, "b@example.com", [inbox.email], header("too big") + filler(250_000))).toMatch(/^552 5\.3\.4/);
    expect(await transaction(b, "b@example.com", [inbox.email], header("after too big") + filler(190_000))).toMatch(/^250 /);

    // A client that leaves in the middle of its data: its bytes come back too.
    const gone = await session();
    await gone.command("MAIL FROM:<gone@example.com>");
    await gone.command(`RCPT TO:<${inbox.email}>`);
    await gone.command("DATA");
    gone.write(header("abandoned") + filler(150_000));
    gone.close();
    await waitFor(async () => (await transaction(b, "b@example.com", [inbox.email], header("after abandoned") + filler(190_000))).startsWith("250 "), {
      timeoutMs: 5_000,
      what: "the abandoned message's bytes freed",
    });
    b.close();
    a.close();

    await waitFor(async () => (await messages()).some((m) => m.subject === "after abandoned"), { timeoutMs: 15_000, what: "the last message filed" });
    const subjects = (await messages()).map((m) => m.subject);
    expect(subjects).toContain("held");
    expect(subjects).not.toContain("too big");
    expect(subjects).not.toContain("abandoned");
  });

  it("a forger who knows a Message-ID cannot suppress the genuine message; an identical resend is filed once", async () => {
    const mail = (subject: string, body: string) =>
      `From: partner@example.com\r\nTo: ${inbox.email}\r\nSubject: ${subject}\r\nMessage-ID: <known-id@example.com>\r\n\r\n${body}\r\n`;
    const c = await session();
    expect(await transaction(c, "forger@evil.example", [inbox.email], mail("Forged first", "send money"))).toMatch(/^250 /);
    const genuine = mail("Genuine", "the real content");
    expect(await transaction(c, "partner@example.com", [inbox.email], genuine)).toMatch(/^250 /);
    // The same bytes again, as after a lost 250.
    expect(await transaction(c, "partner@example.com", [inbox.email], genuine)).toMatch(/^250 /);
    const marker = `From: partner@example.com\r\nSubject: Marker\r\nMessage-ID: <marker-door@example.com>\r\n\r\nlast\r\n`;
    expect(await transaction(c, "partner@example.com", [inbox.email], marker)).toMatch(/^250 /);
    c.close();

    await waitFor(async () => (await messages()).some((m) => m.subject === "Marker"), { timeoutMs: 15_000, what: "the marker" });
    const got = await messages();
    expect(got.filter((m) => m.subject === "Forged first")).toHaveLength(1);
    expect(got.filter((m) => m.subject === "Genuine")).toHaveLength(1);
    expect(got.find((m) => m.subject === "Genuine")!.plainBody?.trim()).toBe("the real content");
  });

  it("a large message is stored under its own name: a resend deduplicated by JetStream leaves no object behind", async () => {
    const store = await openRawStore(nc, s.iso.prefix);
    const big = (subject: string, fill: string) =>
      `From: big@example.com\r\nTo: ${inbox.email}\r\nSubject: ${subject}\r\nMessage-ID: <big-door@example.com>\r\n\r\n${filler(INLINE * 3, fill)}`;
    const names = async () => new Set((await store.list()).filter((i) => !i.deleted).map((i) => i.name));
    const before = await names();
    const first = big("Big one", "a");
    const c = await session();
    const q1 = queueIdOf(await transaction(c, "big@example.com", [inbox.email], first));
    const q2 = queueIdOf(await transaction(c, "big@example.com", [inbox.email], first));
    // Same Message-ID, other bytes: a message of its own, its bytes its own.
    const second = big("Big two", "b");
    const q3 = queueIdOf(await transaction(c, "big@example.com", [inbox.email], second));
    c.close();
    expect(new Set([q1, q2, q3]).size).toBe(3);

    const live = async (name: string) => {
      const info = await store.info(name);
      return !!info && !info.deleted;
    };
    for (const q of [q1, q2, q3]) expect((await carriedOf(q)).rawObject).toBe(q);
    await waitFor(async () => !(await live(q2)), { timeoutMs: 5_000, what: "the duplicate's upload deleted" });
    // Each accepted upload under its queue id, and nothing else (the mailbox may have let some go already).
    const added = [...(await names())].filter((n) => !before.has(n));
    for (const n of added) expect([q1, q3]).toContain(n);
    await waitFor(async () => (await messages()).filter((m) => m.subject.startsWith("Big ")).length >= 2, { timeoutMs: 15_000, what: "both big messages" });
    const got = (await messages()).filter((m) => m.subject.startsWith("Big "));
    expect(got.map((m) => m.subject).sort()).toEqual(["Big one", "Big two"]);
    for (const [subject, sent] of [
      ["Big one", first],
      ["Big two", second],
    ] as const) {
      const bytes = await raw(got.find((m) => m.subject === subject)!.id);
      expect(bytes.toString("latin1").endsWith(sent)).toBe(true);
    }
  });

  it("a connection naming more unknown addresses than SMTP_MAX_UNKNOWN_RECIPIENTS since it last delivered is told 421 4.7.0 and closed", async () => {
    const guess = (i: number | string) => `RCPT TO:<guess-${i}@${s.mailDomain}>`;
    // Counted per connection: RSET and a new MAIL do not start it again.
    const a = await session();
    expect(await a.command("MAIL FROM:<guess@example.com>")).toMatch(/^250/);
    for (let i = 0; i < 2; i++) expect(await a.command(guess(i))).toMatch(/^550 5\.1\.1/);
    expect(await a.command("RSET")).toMatch(/^250/);
    expect(await a.command("MAIL FROM:<guess@example.com>")).toMatch(/^250/);
    for (let i = 2; i < UNKNOWN; i++) expect(await a.command(guess(i))).toMatch(/^550 5\.1\.1/);
    expect(await a.command(guess("last"))).toMatch(/^421 4\.7\.0/);
    await a.closedByPeer();

    // A message with a recipient may name more (a list's mail to some deleted inboxes): it is
    // delivered, and delivering counts the connection's unknown addresses afresh.
    const b = await session();
    expect(await b.command("MAIL FROM:<list@example.com>")).toMatch(/^250/);
    expect(await b.command(`RCPT TO:<${inbox.email}>`)).toMatch(/^250/);
    for (let i = 0; i <= UNKNOWN; i++) expect(await b.command(guess(i))).toMatch(/^550 5\.1\.1/);
    expect(await b.command("DATA")).toMatch(/^354/);
    expect(await b.command("Subject: to a list\r\n\r\nhello\r\n.")).toMatch(/^250/);
    expect(await b.command("MAIL FROM:<list@example.com>")).toMatch(/^250/);
    for (let i = 0; i < UNKNOWN; i++) expect(await b.command(guess(i))).toMatch(/^550 5\.1\.1/);
    expect(await b.command(guess("last"))).toMatch(/^421 4\.7\.0/);
    await b.closedByPeer();

    // Past the limit without delivering, the next transaction is refused at MAIL.
    const c = await session();
    expect(await c.command("MAIL FROM:<guess@example.com>")).toMatch(/^250/);
    expect(await c.command(`RCPT TO:<${inbox.email}>`)).toMatch(/^250/);
    for (let i = 0; i <= UNKNOWN; i++) expect(await c.command(guess(i))).toMatch(/^550 5\.1\.1/);
    expect(await c.command("RSET")).toMatch(/^250/);
    expect(await c.command("MAIL FROM:<guess@example.com>")).toMatch(/^421 4\.7\.0/);
    await c.closedByPeer();
  });

  it("an address naming more unknown addresses than SMTP_MAX_UNKNOWN_RECIPIENTS_PER_IP across its connections is refused, known addresses too; a list's message goes on", async () => {
    const other = await secondDoor({ SMTP_MAX_UNKNOWN_RECIPIENTS: "3", SMTP_MAX_UNKNOWN_RECIPIENTS_PER_IP: "5" });
    const [x, y, z] = ["127.0.0.7", "127.0.0.8", "127.0.0.9"];
    const open = async (from: string) => {
      const t = await SmtpTranscript.open(other.port, { from });
      expect((await t.reply())[0]).toMatch(/^220 /);
      expect(await t.command("EHLO guesser.example")).toMatch(/^250/);
      return t;
    };
    const guess = (i: number | string) => `RCPT TO:<guess-${i}@${s.mailDomain}>`;
    try {
      await waitFor(
        async () => {
          const t = await open(y);
          await t.command("MAIL FROM:<p@example.com>");
          const r = await t.command(`RCPT TO:<${inbox.email}>`);
          t.close();
          return r.startsWith("250");
        },
        { timeoutMs: 5_000, what: "the second door's directory" },
      );
      // X guesses three on one connection (its own cap), then reconnects for more.
      const a = await open(x);
      expect(await a.command("MAIL FROM:<g@example.com>")).toMatch(/^250/);
      for (let i = 0; i < 3; i++) expect(await a.command(guess(i))).toMatch(/^550 5\.1\.1/);
      a.close();
      // A connection of X's open meanwhile, in a transaction without recipients yet.
      const waiting = await open(x);
      expect(await waiting.command("MAIL FROM:<g@example.com>")).toMatch(/^250/);
      const b = await open(x);
      expect(await b.command("MAIL FROM:<g@example.com>")).toMatch(/^250/);
      for (let i = 3; i < 5; i++) expect(await b.command(guess(i))).toMatch(/^550 5\.1\.1/);
      expect(await b.command(guess(5))).toMatch(/^421 4\.7\.0 Too many unknown recipients from your address/);
      await b.closedByPeer();
      // Now a known address is refused like any other (its answer would tell it exists), and
      // a new connection is refused at once.
      expect(await waiting.command(`RCPT TO:<${inbox.email}>`)).toMatch(/^421 4\.7\.0 Too many unknown recipients from your address/);
      await waiting.closedByPeer();
      const c = await SmtpTranscript.open(other.port, { from: x });
      expect((await c.reply())[0]).toMatch(/^421 4\.7\.0 Too many unknown recipients from your address/);
      await c.closedByPeer();
      // Another address is not held to X's count.
      const d = await open(y);
      expect(await d.command("MAIL FROM:<p@example.com>")).toMatch(/^250/);
      expect(await d.command(`RCPT TO:<${inbox.email}>`)).toMatch(/^250/);
      d.close();

      // Z's message has a recipient: its unknown ones past the limit are answered 550 and it is
      // delivered; the next transaction is refused.
      const e = await open(z);
      expect(await e.command("MAIL FROM:<list@example.com>")).toMatch(/^250/);
      expect(await e.command(`RCPT TO:<${inbox.email}>`)).toMatch(/^250/);
      for (let i = 0; i < 7; i++) expect(await e.command(guess(`z${i}`))).toMatch(/^550 5\.1\.1/);
      expect(await e.command("DATA")).toMatch(/^354/);
      expect(await e.command("Subject: to a list with many deleted inboxes\r\n\r\nhello\r\n.")).toMatch(/^250/);
      expect(await e.command("MAIL FROM:<list@example.com>")).toMatch(/^421 4\.7\.0 Too many unknown recipients from your address/);
      await e.closedByPeer();
    } finally {
      await other.destroy();
    }
  });

  it("platform return paths: accepted only from the null sender, carried apart from the recipients; a bad-shaped one is an unknown address", async () => {
    const token = "abcdefghijklmnopqrstuvwxyz234567";
    const bounce = `bounces+${token}@${s.mailDomain}`;
    const c = await session();
    expect(await c.command("MAIL FROM:<someone@x.example>")).toMatch(/^250/);
    expect(await c.command(`RCPT TO:<${bounce}>`)).toMatch(/^550 5\.7\.1 .*bounce/i);
    expect(await c.command(`RCPT TO:<bounces+short@${s.mailDomain}>`)).toMatch(/^550 5\.1\.1/);
    expect(await c.command("RSET")).toMatch(/^250/);

    expect(await c.command("MAIL FROM:<>")).toMatch(/^250/);
    expect(await c.command(`RCPT TO:<bounces+NOT-base32!@${s.mailDomain}>`)).toMatch(/^550 5\.1\.1/);
    expect(await c.command(`RCPT TO:<${bounce.toUpperCase()}>`)).toMatch(/^250/);
    expect(await c.command("DATA")).toMatch(/^354/);
    c.write("From: MAILER-DAEMON@far.example\r\nSubject: Undelivered\r\n\r\nsorry\r\n.\r\n");
    const queueId = queueIdOf((await c.reply())[0]!);
    c.close();

    const meta = await carriedOf(queueId);
    expect(meta.returnPaths).toEqual([{ address: bounce, token }]);
    expect(meta.recipients).toEqual([]);
    expect(meta.mailFrom).toBeNull();
  });
});
