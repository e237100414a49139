import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, type JsMsg } from "@nats-io/jetstream";
import { nanos, nuid } from "@nats-io/transport-node";
import type { Logger } from "@mam/runtime/logger.ts";
import { JS_API_TIMEOUT_MS, type Bus } from "./connection.ts";

/**
 * How long a range read waits for its next entry before it asks the server why: the entries up
 * to its end were in the stream when it started, so either they were removed meanwhile (age
 * or size limits, an operator purging the stream) or the server lost its consumer (a restart:
 * ordered consumers live in memory), which nats.js would only notice after missed heartbeats.
 */
export const RANGE_STALL_MS = 10_000;
/** New consumers a range read may declare after losing one, before it gives up with an error. */
const RANGE_RESTARTS = 3;

/** The sequence of the newest entry of `stream` on a subject matching `filter` (wildcards allowed), 0 if none. */
export async function newestSeq(bus: Bus, stream: string, filter: string): Promise<number> {
  const m = await bus.jsm.streams.getMessage(stream, { last_by_subj: filter });
  return m?.seq ?? 0;
}

/**
 * Whether `stream` holds an entry on a subject matching `filter` after sequence `after`, asked
 * by delivery: one pull, on a consumer of its own starting there, answered by an entry or, past
 * `waitMs`, by none. Exact where the server's pending counts are not, and it needs no right to
 * read the stream's entries by subject (only consumers on `filter`). "None" is believed only
 * once the consumer's position shows the server read through to the stream's last entry as it
 * was before the probe (on a busy server the wait can end before the read was made): until
 * then the answer is true, to be asked again. The consumer is left to the server to remove
 * once idle: a locked-down service may not delete consumers.
 */
export async function holdsEntryAfter(bus: Bus, stream: string, filter: string, after: number, waitMs = 250): Promise<boolean> {
  const last = (await bus.jsm.streams.info(stream)).state.last_seq;
  if (last <= after) return false;
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
  if (code === 0) return true;
  // None within the wait (404 No Messages, 408 Request Timeout): a consumer that found none
  // has its position moved to the stream's end.
  if (code === 404 || code === 408) return (await bus.jsm.consumers.info(stream, name)).delivered.stream_seq < last;
  throw new Error(`probe of ${stream} after ${after}: ${code} ${m.headers?.description ?? ""}`);
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
 * no entry comes for `stallMs`, the consumer's state tells why: gone from the server, the read
 * goes on with a new one from the entry after the last it gave; moved past the end with nothing
 * found, the entries were removed and the read ends with what it gave; anything else is an
 * error (never a read that looks complete and is not).
 */
export async function* readRange(bus: Bus, stream: string, r: RangeRead): AsyncGenerator<JsMsg> {
  let last = 0;
  for (let restarts = 0; ; restarts++) {
    const from = last > 0 ? { seq: last + 1 } : r.from;
    const outcome = yield* readFrom(bus, stream, r, from, (seq) => {
      last = seq;
    });
    if (outcome === "done") return;
    if (restarts >= RANGE_RESTARTS) throw new Error(`reading ${stream} up to ${r.to}: the server lost the read's consumer ${restarts + 1} times`);
    (r.logger ?? bus.logger).warn({ stream, last, to: r.to }, "the server lost a range read's consumer: reading on with a new one");
  }
}

/** One consumer's part of readRange: "done", or "lost" when the server no longer has the consumer. */
async function* readFrom(bus: Bus, stream: string, r: RangeRead, from: RangeRead["from"], gave: (seq: number) => void): AsyncGenerator<JsMsg, "done" | "lost"> {
  const consumer = await bus.js.consumers.get(stream, {
    filter_subjects: r.filter,
    ...("seq" in from ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from.seq } : { opt_start_time: from.time.toISOString() }),
    ...(r.headersOnly && { headers_only: true }),
    inactive_threshold: 60_000,
  });
  try {
    // Where the server starts it (one before its first entry): at or past the end, nothing to read.
    if ((await consumer.info(true)).delivered.stream_seq >= r.to) return "done";
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
    // Stopped with entries up to the end still expected: ask the server why.
    const info = await consumer.info().catch((err: unknown) => {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound) return undefined;
      throw err;
    });
    if (!info) return "lost";
    // A consumer that finds nothing more is moved to the stream's end: what was left was removed.
    if (info.delivered.stream_seq >= r.to) {
      (r.logger ?? bus.logger).warn({ stream, last, to: r.to }, "entries a range read was to read were removed meanwhile: it ends early");
      return "done";
    }
    throw new Error(`reading ${stream}: no entry for ${r.stallMs ?? RANGE_STALL_MS} ms after ${last}, before ${r.to}`);
  } finally {
    consumer.delete().catch(() => false);
  }
}
