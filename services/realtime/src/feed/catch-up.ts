import type { ConsumerInfo } from "@nats-io/jetstream";
import type { Bus } from "@mam/bus/connection.ts";
import { readRange } from "@mam/bus/stream-range.ts";
import { allFeedSubjects } from "@mam/contracts/realtime-feed.ts";

/**
 * Header of every feed entry: the sequence, on the event stream, of the domain event it was
 * rendered from. It lets a re-created renderer start where the feed ends rather than
 * rendering the whole retention window again, and any renderer skip an event the feed holds
 * (past the feed's two-minute duplicate window, its entry would be stored a second time).
 */
export const SOURCE_SEQ_HEADER = "Mam-Event-Seq";

/**
 * How many of the feed's last entries are read when the renderer subscribes (at its start,
 * when its consumer is created again): well past the events one renderer can hold
 * unsettled (4 batches), so the events that were in flight then are among what they cover.
 */
export const CATCH_UP_TAIL = 2048;

const DESCRIPTION = /^feed catch-up: entries (\d+)-(\d+), events to (\d+)$/;

/** The feed's last `tail` entries (their range) and the events behind them, in the feed's order. */
async function feedTail(bus: Bus, feed: string, tail: number): Promise<{ from: number; to: number; seqs: number[] } | undefined> {
  const { state } = await bus.jsm.streams.info(feed);
  if (!state.messages) return undefined;
  const to = state.last_seq;
  const from = Math.max(state.first_seq, to - tail + 1);
  return { from, to, seqs: await sourceSeqs(bus, feed, from, to) };
}

/**
 * Where a re-created renderer starts: at the earliest event behind the newer half of the
 * feed's last entries (an event still in flight then was later than that), with what the
 * feed already holds from there left out (see `eventsInFeed`). Undefined when the feed has
 * no entry telling its event (empty: a first deployment, which renders the retention
 * window).
 */
export async function catchUpPoint(bus: Bus, feed: string, tail = CATCH_UP_TAIL): Promise<{ seq: number; description: string } | undefined> {
  const t = await feedTail(bus, feed, tail);
  if (!t?.seqs.length) return undefined;
  const recent = t.seqs.slice(-Math.ceil(tail / 2));
  return { seq: Math.min(...recent), description: `feed catch-up: entries ${t.from}-${t.to}, events to ${Math.max(...t.seqs)}` };
}

/**
 * Events the feed holds, which the renderer acknowledges unrendered when they come again:
 * those behind its last entries (redelivered past the duplicate window: a renderer gone
 * with entries stored but not acknowledged, all replicas down for minutes; a consumer an
 * operator re-created by hand) and, while the consumer has not settled past them, those
 * behind the entries its description names (read by the replica that re-created it).
 */
export async function eventsInFeed(bus: Bus, feed: string, consumer: ConsumerInfo, tail = CATCH_UP_TAIL): Promise<Set<number>> {
  const seqs = new Set((await feedTail(bus, feed, tail))?.seqs);
  const m = DESCRIPTION.exec(consumer.config.description ?? "");
  if (m && consumer.ack_floor.stream_seq < Number(m[3])) for (const seq of await sourceSeqs(bus, feed, Number(m[1]), Number(m[2]))) seqs.add(seq);
  return seqs;
}

/** The events behind the feed's entries `from`..`to` (those it still holds), in the feed's order. */
async function sourceSeqs(bus: Bus, feed: string, from: number, to: number): Promise<number[]> {
  const out: number[] = [];
  for await (const m of readRange(bus, feed, { filter: allFeedSubjects(bus.prefix), from: { seq: from }, to, headersOnly: true, batch: 512 })) {
    const seq = Number(m.headers?.get(SOURCE_SEQ_HEADER));
    if (Number.isSafeInteger(seq) && seq > 0) out.push(seq);
  }
  return out;
}
