import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeBus, connectBus } from "@mam/bus/connection.ts";
import { openObjectStore } from "@mam/bus/object-store.ts";
import { ensureEventsStream } from "@mam/bus/streams.ts";
import { ingestStreamName } from "@mam/contracts/ingest.ts";
import { eventsStreamName } from "@mam/contracts/subjects.ts";
import { ConfigError } from "@mam/runtime/config.ts";
import { createLogger } from "@mam/runtime/logger.ts";
import { waitFor } from "@mam/runtime/wait.ts";
import { TestDnsServer } from "@mam/testing/dns-server.ts";
import { NatsCluster } from "@mam/testing/nats-cluster.ts";
import { serverUrls } from "@mam/testing/servers.ts";
import { SmtpTranscript } from "@mam/testing/smtp-transcript.ts";
import { provisionTenant, Stack } from "../support/stack.ts";

const silent = createLogger("cluster-test", "silent");

/**
 * NATS_REPLICAS on a three-node JetStream cluster: streams and buckets take the configured
 * number of copies (and change to it at the next start), a single server refuses more than
 * one, and with three copies kill -9 of one node in the middle of an SMTP ingest loses no
 * accepted message and files none twice.
 */
describe("a JetStream cluster with NATS_REPLICAS", () => {
  const cluster = new NatsCluster(3);
  beforeAll(() => cluster.start(), 60_000);
  afterAll(() => cluster.stop());

  const busWith = (prefix: string, replicas: number) => connectBus({ url: cluster.url, prefix, name: "replicas-test", logger: silent, replicas });

  it("gives an existing stream and bucket the replicas of the next start", async () => {
    const prefix = "upd.";
    const one = await busWith(prefix, 1);
    await ensureEventsStream(one);
    await openObjectStore(one.nc, "upd-bucket", {}, one.replicas);
    expect((await one.jsm.streams.info(eventsStreamName(prefix))).config.num_replicas).toBe(1);
    expect((await one.jsm.streams.info("OBJ_upd-bucket")).config.num_replicas).toBe(1);
    await closeBus(one);

    const three = await busWith(prefix, 3);
    await ensureEventsStream(three);
    await openObjectStore(three.nc, "upd-bucket", {}, three.replicas);
    const events = await three.jsm.streams.info(eventsStreamName(prefix));
    expect(events.config.num_replicas).toBe(3);
    expect((await three.jsm.streams.info("OBJ_upd-bucket")).config.num_replicas).toBe(3);
    // Three copies on three servers, not a setting the cluster ignores.
    await waitFor(async () => ((await three.jsm.streams.info(eventsStreamName(prefix))).cluster?.replicas ?? []).length === 2, {
      timeoutMs: 15_000,
      what: "two followers of the events stream",
    });
    await closeBus(three);
  }, 30_000);

  it("never lowers the copies: a process started with fewer leaves the stream and bucket as they are", async () => {
    const prefix = "keep.";
    const three = await busWith(prefix, 3);
    await ensureEventsStream(three);
    await openObjectStore(three.nc, "keep-bucket", {}, three.replicas);
    await closeBus(three);
    // One service started without NATS_REPLICAS (default 1), or an old one during a rollout.
    const one = await busWith(prefix, 1);
    try {
      await ensureEventsStream(one);
      await openObjectStore(one.nc, "keep-bucket", {}, one.replicas);
      expect((await one.jsm.streams.info(eventsStreamName(prefix))).config.num_replicas).toBe(3);
      expect((await one.jsm.streams.info("OBJ_keep-bucket")).config.num_replicas).toBe(3);
    } finally {
      await closeBus(one);
    }
  }, 30_000);

  it("gives the stream and bucket the new count once when every replica raising it starts at once, and all start", async () => {
    const prefix = "together.";
    const one = await busWith(prefix, 1);
    await ensureEventsStream(one);
    await openObjectStore(one.nc, "together-bucket", {}, one.replicas);
    await closeBus(one);
    // Six processes restarted with NATS_REPLICAS=3, each declaring the stream and opening the bucket.
    const buses = await Promise.all(Array.from({ length: 6 }, () => busWith(prefix, 3)));
    try {
      const started = await Promise.allSettled(buses.flatMap((b) => [ensureEventsStream(b), openObjectStore(b.nc, "together-bucket", {}, b.replicas)]));
      expect(started.filter((r) => r.status === "rejected")).toEqual([]);
      expect((await buses[0]!.jsm.streams.info(eventsStreamName(prefix))).config.num_replicas).toBe(3);
      expect((await buses[0]!.jsm.streams.info("OBJ_together-bucket")).config.num_replicas).toBe(3);
    } finally {
      for (const b of buses) await closeBus(b);
    }
  }, 60_000);

  it("refuses more than one replica on a single server, naming NATS_REPLICAS, and creates nothing", async () => {
    const prefix = `single${process.pid}.`;
    const bus = await connectBus({ url: serverUrls().NATS_URL, prefix, name: "replicas-test", logger: silent, replicas: 3 });
    try {
      const refused = await ensureEventsStream(bus).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(ConfigError);
      expect((refused as Error).message).toMatch(/NATS_REPLICAS=3 needs a JetStream cluster/);
      await expect(bus.jsm.streams.info(eventsStreamName(prefix))).rejects.toThrow(/not found/);
    } finally {
      await closeBus(bus);
    }
  });

  it("refuses more replicas than the cluster has servers, naming NATS_REPLICAS", async () => {
    const bus = await busWith("five.", 5);
    try {
      const refused = await ensureEventsStream(bus).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(ConfigError);
      expect((refused as Error).message).toMatch(/NATS_REPLICAS=5: the JetStream cluster refused 5 copies/);
    } finally {
      await closeBus(bus);
    }
  });

  describe("kill -9 of the INGEST stream's leader during an SMTP ingest", () => {
    const N = 240;
    const CONNECTIONS = 6;
    const dns = new TestDnsServer();
    let s: Stack;
    let inbox: { id: string; apiKey: string; email: string };

    beforeAll(async () => {
      const resolver = await dns.start();
      s = new Stack({
        logLevel: "silent",
        smtp: true,
        natsEnv: () => ({ NATS_URL: cluster.url, NATS_REPLICAS: "3" }),
        mailboxEnv: { DNS_SERVERS: resolver },
      });
      await s.start();
      const t = await provisionTenant(s);
      inbox = (await s.api("POST", "/v1/inboxes", { key: t.key.key, body: { username: "replicated" } })).body;
      // smtp-ingress hears of the new inbox through an event.
      await waitFor(
        async () => {
          const t = await SmtpTranscript.open(s.smtp!.port);
          await t.reply();
          await t.command("EHLO probe");
          await t.command("MAIL FROM:<p@example.com>");
          const r = await t.command(`RCPT TO:<${inbox.email}>`);
          t.close();
          return r.startsWith("250");
        },
        { timeoutMs: 10_000, what: "the inbox in smtp-ingress's directory" },
      );
    }, 60_000);
    afterAll(async () => {
      await s?.stop();
      await dns.stop();
    });

    /**
     * Sends message `i` until it is accepted, as an MTA does: a 4xx or a dropped connection
     * (the cluster electing a new leader) means "try again", with the same bytes.
     */
    async function accepted(transport: ReturnType<typeof nodemailer.createTransport>, i: number): Promise<void> {
      for (let attempt = 1; ; attempt++) {
        try {
          const info = await transport.sendMail({
            from: "sender@example.com",
            to: inbox.email,
            subject: `r3 ${i}`,
            text: `message ${i}`,
            messageId: `<r3-${i}@example.com>`,
            date: new Date("2026-12-01T03:00:00Z"),
          });
          expect(info.response).toMatch(/^250/);
          return;
        } catch (err) {
          const response = (err as { response?: string }).response;
          if (attempt >= 40 || (response !== undefined && !/^4/.test(response))) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    }

    async function filed(): Promise<string[]> {
      const ids: string[] = [];
      for (let offset = 0; ; offset += 100) {
        const r = await s.api("GET", `/v1/inboxes/${inbox.id}/messages?limit=100&offset=${offset}`, { key: inbox.apiKey });
        expect(r.status).toBe(200);
        ids.push(...r.body.messages.map((m: { messageIdHeader: string }) => m.messageIdHeader));
        if (r.body.messages.length < 100) return ids;
      }
    }

    it("files every message that got a 250 exactly once", async () => {
      const ingest = ingestStreamName(s.iso.prefix);
      expect((await cluster.withNode(cluster.nodes[0]!, (jsm) => jsm.streams.info(ingest))).config.num_replicas).toBe(3);
      const victim = await cluster.leaderOf(ingest);
      let next = 0;
      let done = 0;
      let killed: Promise<void> | undefined;
      await Promise.all(
        Array.from({ length: CONNECTIONS }, async () => {
          const transport = nodemailer.createTransport({
            host: "127.0.0.1",
            port: s.smtp!.port,
            secure: false,
            ignoreTLS: true,
            pool: true,
            maxConnections: 1,
          });
          try {
            for (let i = next++; i < N; i = next++) {
              await accepted(transport, i);
              if (++done === N / 3) killed = cluster.kill(victim);
            }
          } finally {
            transport.close();
          }
        }),
      );
      await killed;
      expect(killed).toBeDefined();

      const want = Array.from({ length: N }, (_, i) => `<r3-${i}@example.com>`);
      let seen: string[] = [];
      await waitFor(async () => (seen = await filed()).length >= N, { timeoutMs: 30_000, intervalMs: 250, what: `${N} messages filed` }).catch((err: Error) => {
        throw new Error(`${err.message}: ${seen.length} filed, missing ${want.filter((w) => !seen.includes(w)).join(" ")}`);
      });
      const ids = await filed();
      expect(ids.length).toBe(N);
      expect(new Set(ids).size).toBe(N);
      expect([...ids].sort()).toEqual([...want].sort());
      // The killed node comes back and catches up: three copies again.
      await cluster.restart(victim);
    }, 60_000);
  });
});
