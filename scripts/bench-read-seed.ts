/**
 * Seeding for `pnpm bench:read`: generated mail published to the ingest stream through
 * smtp-ingress's own publishing function (the same Received header, dedupe key and ingest
 * description the SMTP door makes), then filed by the mailbox's own consumer. Publishing is
 * bounded twice: so many PubAcks awaited at once, and no more than so many messages waiting
 * in the stream for the mailbox (a 1M run does not park gigabytes in JetStream).
 */
import { createHash } from "node:crypto";
import type { Bus } from "@mam/bus/connection.ts";
import { ingestStreamName } from "@mam/contracts/ingest.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import { uuidv7 } from "@mam/runtime/ids.ts";
import { dedupeKeyOf, openRawStore, publishIngest } from "@mam/smtp-ingress/smtp/ingest.ts";
import { benchMail } from "./bench-read-mail.ts";
import type { WorldInbox } from "./bench-read-world.ts";

export interface SeedOptions {
  bus: Bus;
  inboxes: WorldInbox[];
  /** Messages from..to-1 are published. */
  from: number;
  to: number;
  /** PubAcks awaited at once. */
  inFlight: number;
  /** Most messages waiting in the ingest stream before publishing pauses. */
  backlog: number;
  /** smtp-ingress's INGEST_INLINE_BYTES. */
  inlineLimit: number;
  logger: Logger;
}

export interface SeedResult {
  published: number;
  publishSeconds: number;
  /** From the first publish until the stream was empty (every message filed). */
  totalSeconds: number;
}

const HOSTNAME = "mx.bench.test";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function seed(o: SeedOptions): Promise<SeedResult> {
  const stream = ingestStreamName(o.bus.prefix);
  let store: ReturnType<typeof openRawStore> | undefined;
  const openStore = () => (store ??= openRawStore(o.bus.nc, o.bus.prefix));
  const count = o.to - o.from;
  let next = o.from;
  let acked = 0;
  // Messages in the stream at the last look, and how many PubAcks had come by then.
  let waiting = 0;
  let ackedAtLook = 0;
  const waitingInStream = async () => (await o.bus.jsm.streams.info(stream)).state.messages;
  const started = performance.now();

  const publishOne = async (n: number) => {
    const mail = benchMail(n, o.inboxes);
    const inbox = o.inboxes[n % o.inboxes.length]!;
    const queueId = uuidv7();
    const now = new Date();
    const head = Buffer.from(`Received: from bench-client (127.0.0.1) by ${HOSTNAME} with ESMTP id ${queueId};\r\n\t${now.toUTCString()}\r\n`);
    const size = head.length + mail.bytes.length;
    await publishIngest(
      o.bus,
      openStore,
      {
        v: 1,
        dedupeKey: dedupeKeyOf({
          mailFrom: mail.mailFrom,
          recipients: [mail.to],
          returnPaths: [],
          contentHash: createHash("sha256").update(mail.bytes).digest("hex"),
        }),
        queueId,
        receivedAt: now.toISOString(),
        remoteAddress: "127.0.0.1",
        helo: "bench-client",
        mailFrom: mail.mailFrom,
        recipients: [{ address: mail.to, tenantId: inbox.tenantId, workspaceId: inbox.workspaceId, inboxId: inbox.id }],
        returnPaths: [],
        size,
      },
      { head, chunks: [mail.bytes], size },
      o.inlineLimit,
      o.logger,
    );
  };

  // Progress and the backlog the publishers look at, read off the stream every second.
  let publishedAt = 0;
  let lastPrint = started;
  let lastFiled = 0;
  let monitoring = true;
  const monitor = (async () => {
    while (monitoring) {
      const before = acked;
      waiting = await waitingInStream();
      ackedAtLook = before;
      const t = performance.now();
      if (t - lastPrint >= 5_000) {
        const filed = acked - waiting;
        const rate = ((filed - lastFiled) * 1000) / (t - lastPrint);
        const eta = rate > 0 ? (count - filed) / rate : Number.POSITIVE_INFINITY;
        process.stdout.write(
          `  ${(o.from + filed).toLocaleString("en")} filed of ${o.to.toLocaleString("en")}  published ${(o.from + acked).toLocaleString("en")}  ` +
            `waiting ${waiting}  filing ${rate.toFixed(0)}/s  ETA ${Number.isFinite(eta) ? `${eta.toFixed(0)} s` : "?"}\n`,
        );
        lastPrint = t;
        lastFiled = filed;
      }
      await sleep(1_000);
    }
  })();

  await Promise.all(
    Array.from({ length: o.inFlight }, async () => {
      for (let n = next++; n < o.to; n = next++) {
        // What the stream held a second ago at most, and what was published since.
        while (waiting + acked - ackedAtLook > o.backlog) await sleep(50);
        await publishOne(n);
        acked++;
      }
    }),
  );
  publishedAt = performance.now();
  while ((await waitingInStream()) > 0) await sleep(200);
  monitoring = false;
  await monitor;
  return { published: count, publishSeconds: (publishedAt - started) / 1000, totalSeconds: (performance.now() - started) / 1000 };
}
