import type { Bus } from "@mam/bus/connection.ts";
import { newestSeq, readRange } from "@mam/bus/stream-range.ts";
import { FeedEvent, feedFilterOf, publicEventTime } from "@mam/contracts/realtime-feed.ts";
import { toEventFrame } from "@mam/contracts/ws-frames.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import { outgoing, type Outgoing } from "./registry.ts";
import type { ResumeScope } from "./scope.ts";

/**
 * How much earlier than its event id's time a feed entry is looked for: the id's time comes
 * from the mailbox's clock, the entry's from the NATS server's, which may lag behind it.
 */
const CLOCK_SKEW_MS = 5_000;

export interface ReplayRequest {
  lastEventId: string;
  scope: ResumeScope;
  /** Whether the subscription wants this event (its filters). */
  accept: (e: FeedEvent) => boolean;
  /** Sends one; false once the client is gone, slow, or subscribed again. */
  send: (out: Outgoing) => boolean;
  /** Waits until the client has room for more; false once it is gone or subscribed again. */
  room: () => Promise<boolean>;
  /** Asked at the end: true when live events were let go meanwhile, so the replay reads on to the feed's end. */
  readOn?: () => boolean;
}

/** Found: everything after it up to `lastSeq` (a feed stream sequence) was replayed. */
export type ReplayOutcome = { found: true; lastSeq: number } | { found: false; code: "RESUME_TOO_OLD" | "RESUME_UNKNOWN_EVENT" };

/**
 * Reads a client's part of the feed from just before its last event's time, skips up to and
 * including that event, and sends what follows that its filters want, in order, up to the last
 * entry of its scope when the replay started (the live events after it are queued by the
 * connection meanwhile; if it let them go, the replay reads on to the entry last then, and
 * again, until it has not). Filtered to the narrowest scope the subscription stays in.
 */
export async function replayFeed(
  o: { bus: Bus; stream: string; retentionS: number; logger: Logger; stallMs?: number },
  r: ReplayRequest,
): Promise<ReplayOutcome> {
  const { bus, stream } = o;
  const at = publicEventTime(r.lastEventId);
  // No longer wanted (the client left or subscribed again while this waited its turn): no consumer for it.
  if (!(await r.room())) return { found: false, code: "RESUME_UNKNOWN_EVENT" };
  const info = await bus.jsm.streams.info(stream);
  // The oldest the feed holds: its first entry, or (empty) the retention window's start.
  const oldest = info.state.messages > 0 ? Date.parse(info.state.first_ts) : Date.now() - o.retentionS * 1000;
  const notFound = (): ReplayOutcome => ({ found: false, code: at < oldest ? "RESUME_TOO_OLD" : "RESUME_UNKNOWN_EVENT" });
  if (info.state.messages === 0) return notFound();
  const filter = feedFilterOf(bus.prefix, r.scope);
  const to = await newestSeq(bus, stream, filter);
  if (to === 0) return notFound();

  let from: { time: Date } | { seq: number } = { time: new Date(Math.max(0, at - CLOCK_SKEW_MS)) };
  let end = to;
  let found = false;
  let lastSeq = 0;
  for (;;) {
    const entries = readRange(bus, stream, { filter, from, to: end, stallMs: o.stallMs, logger: o.logger });
    for await (const m of entries) {
      if (!found) {
        found = (m.headers?.get("Nats-Msg-Id") || readEventId(m.json.bind(m))) === r.lastEventId;
      } else {
        const e = FeedEvent.safeParse(m.json());
        if (!e.success) o.logger.warn({ seq: m.seq }, "unreadable feed entry skipped in a replay");
        else if (r.accept(e.data) && !r.send(outgoing(toEventFrame(e.data)))) return { found: true, lastSeq };
      }
      lastSeq = m.seq;
      if (!(await r.room())) return found ? { found: true, lastSeq } : notFound();
    }
    if (!found || !r.readOn?.()) break;
    // The entries of the live events let go are in the feed by now (the fan-out reads them from it).
    const next = await newestSeq(bus, stream, filter);
    if (next <= end) break;
    from = { seq: end + 1 };
    end = next;
  }
  return found ? { found: true, lastSeq } : notFound();
}

function readEventId(json: () => unknown): string | undefined {
  try {
    return (json() as { eventId?: string }).eventId;
  } catch {
    return undefined;
  }
}
