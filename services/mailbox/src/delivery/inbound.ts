import { ZodError } from "zod";
import type { ObjectStore } from "@nats-io/obj";
import { nanos } from "@nats-io/transport-node";
import { DurableConsumer } from "@mam/bus/consumer.ts";
import { addLogContext } from "@mam/runtime/log-context.ts";
import { openObjectStore } from "@mam/bus/object-store.ts";
import { ensureIngestStream } from "@mam/bus/streams.ts";
import { INGEST_META_HEADER, IngestMeta, ingestBucketName, ingestSubject } from "@mam/contracts/ingest.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import type { MailboxContext } from "../context.ts";
import { previewOf } from "../mime/compose.ts";
import { authVerdicts } from "../mime/authenticate.ts";
import { parseMail } from "../mime/parse.ts";
import { cachedLookup } from "../dns/cache.ts";
import { makeResolver } from "../dns/verify.ts";
import { sha256 } from "../store/blobs.ts";
import { readDeliveryReport, recordBounce, type BounceResult } from "./bounces.ts";
import { NO_NOTICE, oweFailureNotice } from "./failure-notices.ts";
import { returnPaths } from "./return-path.ts";
import { derivedId } from "./ids.ts";
import { Filer } from "./receive.ts";

export const INGEST_DURABLE = "mailbox-ingest";

/** Raw messages too large for one NATS message wait in this bucket; they expire after a week. */
export const openIngestBucket = (backbone: Backbone<any>): Promise<ObjectStore> =>
  openObjectStore(backbone.bus.nc, ingestBucketName(backbone.bus.prefix), { ttl: nanos(7 * 86_400_000) }, backbone.bus.replicas, backbone.bus.logger);

/** Files mail accepted by smtp-ingress into each recipient's inbox, once per inbox. */
export async function inboundWorker(ctx: MailboxContext, backbone: Backbone<any>): Promise<DurableConsumer> {
  const stream = await ensureIngestStream(backbone.bus);
  let bucket: Promise<ObjectStore> | undefined;
  const lookup = cachedLookup(makeResolver(ctx.cfg.DNS_SERVERS));
  const filer = new Filer(ctx);
  backbone.watchConsumerLag(stream, INGEST_DURABLE);
  return new DurableConsumer({
    bus: backbone.bus,
    stream,
    durable: INGEST_DURABLE,
    filterSubject: ingestSubject(backbone.bus.prefix),
    logger: ctx.logger,
    isPoison: (err) => err instanceof ZodError || err instanceof SyntaxError,
    // Many messages in flight, so that filings of one tenant group into one commit.
    keyOf: (msg) => String(msg.seq % 64),
    concurrency: 64,
    // A mailbox that dies mid-message hands it to another replica (or its restart) soon.
    ackWaitMs: 10_000,
    // Not an event: its Nats-Msg-Id is smtp-ingress's dedupe key. The queue id is added once read.
    logContextOf: () => ({}),
    handle: async (msg) => {
      const meta = IngestMeta.parse(JSON.parse(msg.headers?.get(INGEST_META_HEADER) ?? "null"));
      addLogContext({ queueId: meta.queueId });
      let raw = Buffer.from(msg.data);
      if (meta.rawObject) {
        const blob = await (await (bucket ??= openIngestBucket(backbone))).getBlob(meta.rawObject);
        if (!blob) throw new ZodError([{ code: "custom", path: ["rawObject"], message: "raw message missing from the bucket", input: meta.rawObject }]);
        raw = Buffer.from(blob);
      }
      if (meta.returnPaths.length) await bounced(ctx, meta, raw);
      if (!meta.recipients.length) return;
      const [p, authentication] = await Promise.all([
        parseMail(raw, meta.mailFrom),
        authVerdicts(raw, { ip: meta.remoteAddress, helo: meta.helo, sender: meta.mailFrom, mta: ctx.cfg.MAIL_DOMAIN, lookup }),
      ]);
      const parts = [
        raw,
        ...(p.text !== undefined ? [Buffer.from(p.text)] : []),
        ...(p.html !== undefined ? [Buffer.from(p.html)] : []),
        ...p.attachments.map((a) => a.content),
      ];
      const facts = {
        from: p.from,
        to: p.to.length ? p.to : meta.recipients.map((r) => r.address),
        cc: p.cc,
        bcc: [],
        replyTo: p.replyTo,
        subject: p.subject,
        messageIdHeader: p.messageIdHeader ?? `<${meta.queueId}@ingest.invalid>`,
        inReplyTo: p.inReplyTo,
        references: p.references,
        rawHash: sha256(raw),
        rawSize: raw.length,
        plainHash: p.text !== undefined ? sha256(p.text) : null,
        htmlHash: p.html !== undefined ? sha256(p.html) : null,
        preview: previewOf(p.text, p.html),
        attachments: p.attachments.map((a, i) => ({
          id: derivedId("attachment", meta.dedupeKey, String(i)),
          filename: a.filename,
          contentType: a.contentType,
          sizeBytes: a.content.length,
          hash: sha256(a.content),
        })),
      };
      // A report sent to an inbox is mail like any other: only a return path can mark a bounce.
      const byInbox = new Map<string, IngestMeta["recipients"]>();
      for (const r of meta.recipients) byInbox.set(r.inboxId, [...(byInbox.get(r.inboxId) ?? []), r]);
      const failed: string[] = [];
      for (const [inboxId, rs] of byInbox) {
        const r = rs[0]!;
        const result = await filer.file({ tenant_id: r.tenantId, workspace_id: r.workspaceId, inbox_id: inboxId }, facts, parts, {
          dedupeParts: ["smtp", meta.dedupeKey],
          sourceMessageId: null,
          authentication,
        });
        // smtp-ingress's directory still listed the inbox (it hears of a deletion or of its
        // workspace's end after the fact). It is not filed (nothing could ever read it).
        if (result === "inbox gone") {
          failed.push(...rs.map((x) => x.address));
          ctx.logger.warn(
            { queueId: meta.queueId, addresses: rs.map((x) => x.address), inboxId, workspaceId: r.workspaceId },
            "accepted mail for an inbox that no longer takes mail not filed",
          );
        }
      }
      // The sender got 250 for them: it is told they failed, before the message is acknowledged
      // (a failure here redelivers it; what was filed is filed once, the notice queued once).
      if (!failed.length) return;
      const owed = await oweFailureNotice(ctx, meta, raw, failed, authentication.spf);
      if (owed !== "queued") ctx.logger.info({ queueId: meta.queueId, addresses: failed, mailFrom: meta.mailFrom }, NO_NOTICE[owed]);
    },
  });
}

/**
 * Mail to the return paths of our own outgoing messages. Only a failure report (RFC 3464)
 * from the null sender (RFC 5321 4.5.5: reports never come from a mailbox), to a token we
 * made, marks the message the token names bounced. Anything else there has no inbox to be
 * filed in: it is dropped, and said so.
 */
async function bounced(ctx: MailboxContext, meta: IngestMeta, raw: Buffer): Promise<void> {
  const about = { queueId: meta.queueId, remoteAddress: meta.remoteAddress };
  if (meta.mailFrom !== null) {
    ctx.logger.warn({ ...about, mailFrom: meta.mailFrom }, "mail to a return path from a non-null sender dropped");
    return;
  }
  const paths = await returnPaths(ctx);
  // Read only once a token is ours: a stranger's bytes are not worth parsing.
  let report: ReturnType<typeof readDeliveryReport> | undefined;
  for (const rp of meta.returnPaths) {
    const messageId = paths.messageOf(rp.token);
    if (!messageId) {
      ctx.logger.warn({ ...about, address: rp.address }, "report to a return path with a token we did not make dropped");
      continue;
    }
    if (report === undefined) report = readDeliveryReport(raw);
    if (!report) {
      ctx.logger.info({ ...about, messageId }, "mail to a return path that is no failure report dropped");
      continue;
    }
    const r = await recordBounce(ctx, messageId, report);
    switch (r.result) {
      case "no such message":
        ctx.logger.warn({ ...about, messageId }, "report about a message that does not exist dropped");
        break;
      case "no recipient of the message":
        ctx.logger.warn({ ...about, messageId, named: report.recipients }, "report naming no recipient of the message dropped");
        break;
      case "bounced already":
        ctx.logger.info({ ...about, messageId, named: report.recipients }, "report about recipients bounced already: nothing to record");
        break;
      case "recorded":
        ctx.logger.info({ ...about, messageId, recipients: r.recipients, reasons: report.reasons }, "bounce recorded");
        break;
      default: {
        const unreachable: never = r;
        throw new Error(`unknown bounce result ${(unreachable as BounceResult).result}`);
      }
    }
  }
}
