import { AckPolicy, DeliverPolicy, type JsMsg, type MsgRequest } from "@nats-io/jetstream";
import { nanos, nuid } from "@nats-io/transport-node";
import type { Logger } from "@mam/runtime/logger.ts";
import { JS_API_TIMEOUT_MS, type Bus } from "./connection.ts";
import { streamEnd } from "./consumer.ts";

/**
 * How long a range read waits for its next entry before it asks the stream why (see readRange):
 * nats.js would notice a lost ordered consumer (they live in the server's memory) only after
 * two missed heartbeats, 30 s.
 */
export const RANGE_STALL_MS = 10_000;
/** New consumers a range read may declare after stalls in a row (none giving an entry), before it gives up with an error. */
const RANGE_RESTARTS = 3;

/** The sequence of the newest entry of `stream` on a subject matching `filter` (wildcards allowed), 0 if none. */
export async function newestSeq(bus: Bus, stream: string, filter: string): Promise<number> {
  const m = await bus.jsm.streams.getMessage(stream, { last_by_subj: filter });
  return m?.seq ?? 0;
}

/**
 * The sequence of the first entry of `stream` at or after `seq` on a subject matching `filter`
 * (wildcards allowed), 0 if none. (nats-server 2.9 takes `next_by_subj` on the stream's message
 * API; nats.js types it for direct gets only.)
 */
export async function nextSeq(bus: Bus, stream: string, filter: string, seq: number): Promise<number> {
  const m = await bus.jsm.streams.getMessage(stream, { seq, next_by_subj: filter } as unknown as MsgRequest);
  return m?.seq ?? 0;
}

/** What a delivery probe (probeAfter) learnt of a stream past a sequence. */
export interface ProbeAnswer {
  /** The stream's last sequence when the probe began: what "none" covers. */
  through: number;
  /** The first entry on the filter past the sequence, if one came (it may lie past `through`). */
  first?: number;
}

/**
 * The first entry of `stream` on a subject matching `filter` after sequence `after`, asked by
 * delivery: one pull, on a consumer of its own starting there, answered by an entry or, past
 * `waitMs`, by none. Exact where the server's pending counts are not, and it needs no right to
 * read the stream's entries by subject (only consumers on `filter`). "None" is believed only
 * once the consumer's position shows the server read through to the stream's last entry as it
 * was before the probe (on a busy server the wait can end before the read was made): until
 * then the answer is undefined, to be asked again. The consumer is left to the server to remove
 * once idle: a locked-down service may not delete consumers.
 */
export async function probeAfter(bus: Bus, stream: string, filter: string, after: number, waitMs = 250): Promise<ProbeAnswer | undefined> {
  const through = await streamEnd(bus, stream);
  if (through <= after) return { through };
  const name = `probe_${nuid.next()}`;
  await bus.jsm.consumers.add(stream, {
    name,
    filter_subject: filter,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: after + 1,
    ack_policy: AckPolicy.None,
    mem_storage: true,
    num_replicas: 1,
    inactive_threshold: nanos(5_000),
  });
  // Its own reply subscription (noMux): an entry comes back on the entry's subject, which the
  // shared request inbox would not route.
  const m = await bus.nc.request(`$JS.API.CONSUMER.MSG.NEXT.${stream}.${name}`, JSON.stringify({ batch: 1, expires: nanos(waitMs) }), {
    timeout: waitMs + JS_API_TIMEOUT_MS,
    noMux: true,
  });
  const code = m.headers?.code ?? 0;
  if (code === 0) return { through, first: deliveredSeq(m.reply) };
  // None within the wait (404 No Messages, 408 Request Timeout): a consumer that found none
  // has its position moved to the stream's end.
  if (code === 404 || code === 408) return (await bus.jsm.consumers.info(stream, name)).delivered.stream_seq >= through ? { through } : undefined;
  throw new Error(`probe of ${stream} after ${after}: ${code} ${m.headers?.description ?? ""}`);
}

/**
 * The stream sequence a delivered entry's acknowledgement subject carries:
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<time>.<pending>`, or with the
 * domain and account hash after `$JS.ACK` (and a random token at the end) on newer servers.
 */
function deliveredSeq(reply: string | undefined): number {
  const t = reply?.split(".") ?? [];
  const seq = Number(t.length === 9 ? t[5] : t.length >= 11 ? t[7] : Number.NaN);
  if (t[0] !== "$JS" || t[1] !== "ACK" || !Number.isSafeInteger(seq) || seq < 1) throw new Error(`not a JetStream delivery: ${reply}`);
  return seq;
}

export interface RangeRead {
  /** Only entries on subjects matching this. */
  filter: string;
  /** From this stream sequence, or from the first entry stored at or after this time. */
  from: { seq: number } | { time: Date };
  /** Up to this stream sequence (included): usually `newestSeq` read before the range is. */
  to: number;
  headersOnly?: boolean;
  /** Entries asked of the server at a time. */
  batch?: number;
  stallMs?: number;
  /** Default: the bus's. */
  logger?: Logger;
}

/**
 * A stream's entries from a start to a known end, in order, through an ordered consumer of its
 * own (deleted after). The read ends at that end's sequence, never where the server's pending
 * count says nothing is left: nats-server 2.9 has said 0 pending on a filtered consumer
 * created while the stream was written, with entries of its filter still to come. Time the
 * caller spends between entries is not waiting (a reader may go at its client's pace). When
 * no entry comes for `stallMs`, the stream says why: entries up to the end still in it (the
 * consumer lost in a server restart, entries or pulls lost with a dropped connection), the
 * read goes on with a new consumer from the entry after the last it gave, a few times at most
 * (then an error, never a read that looks complete and is not); none left, they were removed
 * meanwhile (age or size limits, a purge) and the read ends with what it gave. Needs the right
 * to read the stream's entries by subject (`nextSeq`).
 */
export async function* readRange(bus: Bus, stream: string, r: RangeRead): AsyncGenerator<JsMsg> {
  let last = 0;
  // Consumers in a row that stalled, the first of them counted even if it gave entries before.
  let stalls = 0;
  for (;;) {
    const before = last;
    const from = last > 0 ? { seq: last + 1 } : r.from;
    const outcome = yield* readFrom(bus, stream, r, from, (seq) => {
      last = seq;
    });
    if (outcome === "done") return;
    stalls = last > before ? 1 : stalls + 1;
    if (stalls > RANGE_RESTARTS)
      throw new Error(`reading ${stream} up to ${r.to}: no entry came for ${r.stallMs ?? RANGE_STALL_MS} ms, ${stalls} consumers in a row`);
    (r.logger ?? bus.logger).warn({ stream, last, to: r.to }, "no entry came to a range read, though the stream holds them: reading on with a new consumer");
  }
}

/** One consumer's part of readRange: "done", or "again" to go on with a new consumer. */
async function* readFrom(
  bus: Bus,
  stream: string,
  r: RangeRead,
  from: RangeRead["from"],
  gave: (seq: number) => void,
): AsyncGenerator<JsMsg, "done" | "again"> {
  const consumer = await bus.js.consumers.get(stream, {
    filter_subjects: r.filter,
    ...("seq" in from ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from.seq } : { opt_start_time: from.time.toISOString() }),
    ...(r.headersOnly && { headers_only: true }),
    inactive_threshold: 60_000,
  });
  try {
    // Where the server starts it (one before its first entry): at or past the end, nothing to read.
    const startedAfter = (await consumer.info(true)).delivered.stream_seq;
    if (startedAfter >= r.to) return "done";
    const messages = await consumer.consume({ max_messages: r.batch ?? 64 });
    const entries = messages[Symbol.asyncIterator]();
    let stall: NodeJS.Timeout | undefined;
    let last = 0;
    try {
      for (;;) {
        stall = setTimeout(() => messages.stop(), r.stallMs ?? RANGE_STALL_MS);
        const next = await entries.next();
        clearTimeout(stall);
        if (next.done) break;
        if (next.value.seq > r.to) return "done";
        last = next.value.seq;
        gave(last);
        yield next.value;
        if (last === r.to) return "done";
      }
    } finally {
      clearTimeout(stall);
      messages.stop();
    }
    // Stopped with entries up to the end still expected. Still in the stream: read them with a
    // new consumer, whatever kept them (the consumer lost in a server restart, the entries or
    // the pulls lost with a dropped connection: the server counts an entry delivered once sent).
    // Gone from it: removed meanwhile, and the read ends with what it gave.
    const next = await nextSeq(bus, stream, r.filter, (last || startedAfter) + 1);
    if (next > 0 && next <= r.to) return "again";
    (r.logger ?? bus.logger).warn({ stream, last, to: r.to }, "entries a range read was to read were removed meanwhile: it ends early");
    return "done";
  } finally {
    consumer.delete().catch(() => false);
  }
}
