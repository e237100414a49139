import { DeliverPolicy } from "@nats-io/jetstream";
import type { Bus } from "@mam/bus/connection.ts";
import { allFeedSubjects } from "@mam/contracts/realtime-feed.ts";

/**
 * Header of every feed entry: the sequence, on the event stream, of the domain event it was
 * rendered from. It lets a re-created renderer start where the feed ends rather than
 * rendering the whole retention window again (whose entries, past the feed's two-minute
 * duplicate window, would all be stored a second time).
 */
export const SOURCE_SEQ_HEADER = "Mam-Event-Seq";

/**
 * How many of the feed's last entries are read when the renderer's consumer is created
 * again: well past the events one renderer can hold unsettled (4 batches), so the events
 * that were in flight when the old consumer went are among what is rendered again.
 */
export const CATCH_UP_TAIL = 2048;

const DESCRIPTION = /^feed catch-up: entries (\d+)-(\d+), events to (\d+)$/;

/** Which events the feed already holds, read from a range of its entries; an event at or below `upTo` not among them is rendered. */
export interface RenderedBefore {
  upTo: number;
  seqs: Set<number>;
}

/**
 * Where a re-created renderer starts: at the earliest event behind the newer half of the
 * feed's last entries (an event still in flight then was later than that), with what the
 * feed already holds from there left out (see `renderedBefore`). Undefined when the feed
 * has no entry telling its event (empty: a first deployment, which renders the retention
 * window).
 */
export async function catchUpPoint(bus: Bus, feed: string, tail = CATCH_UP_TAIL): Promise<{ seq: number; description: string } | undefined> {
  const { state } = await bus.jsm.streams.info(feed);
  if (!state.messages) return undefined;
  const to = state.last_seq;
  const from = Math.max(state.first_seq, to - tail + 1);
  const seqs = await sourceSeqs(bus, feed, from, to);
  if (!seqs.length) return undefined;
  const recent = seqs.slice(-Math.ceil(tail / 2));
  return { seq: Math.min(...recent), description: `feed catch-up: entries ${from}-${to}, events to ${Math.max(...seqs)}` };
}

/** What a consumer's description (left by the replica that created it) names: a range of feed entries, and the last event behind them. */
export interface CatchUpMark {
  from: number;
  to: number;
  upTo: number;
}
export function catchUpMark(description: string | undefined): CatchUpMark | undefined {
  const m = DESCRIPTION.exec(description ?? "");
  return m ? { from: Number(m[1]), to: Number(m[2]), upTo: Number(m[3]) } : undefined;
}

/** The events the feed held (as the mark names them) when the consumer was created. */
export async function renderedBefore(bus: Bus, feed: string, mark: CatchUpMark): Promise<RenderedBefore> {
  return { upTo: mark.upTo, seqs: new Set(await sourceSeqs(bus, feed, mark.from, mark.to)) };
}

/** The events behind the feed's entries `from`..`to` (those it still holds), in the feed's order. */
async function sourceSeqs(bus: Bus, feed: string, from: number, to: number): Promise<number[]> {
  const out: number[] = [];
  const consumer = await bus.js.consumers.get(feed, {
    filter_subjects: allFeedSubjects(bus.prefix),
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: from,
    headers_only: true,
    inactive_threshold: 60_000,
  });
  try {
    if ((await consumer.info(true)).num_pending === 0) return out;
    const messages = await consumer.consume({ max_messages: 512 });
    try {
      for await (const m of messages) {
        if (m.seq > to) break;
        const seq = Number(m.headers?.get(SOURCE_SEQ_HEADER));
        if (Number.isSafeInteger(seq) && seq > 0) out.push(seq);
        if (m.seq === to || m.info.pending === 0) break;
      }
    } finally {
      messages.stop();
    }
    return out;
  } finally {
    consumer.delete().catch(() => false);
  }
}
