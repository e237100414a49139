import type { Bus } from "@mam/bus/connection.ts";
import { allFeedSubjects, FeedEvent } from "@mam/contracts/realtime-feed.ts";
import { toEventFrame } from "@mam/contracts/ws-frames.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import { Follower } from "./follow.ts";
import { outgoing, type Outgoing } from "./registry.ts";

/**
 * One ordered consumer per replica on the whole feed, from the moment it starts: each entry
 * is read and rendered once, then offered to the connections that may want it, with its
 * stream sequence (a replay uses it to join the live events without a gap or a repeat).
 */
export function feedFanout(o: { bus: Bus; stream: string; logger: Logger; dispatch: (e: FeedEvent, seq: number, out: Outgoing) => void }): Follower {
  return new Follower({
    bus: o.bus,
    stream: o.stream,
    filter: allFeedSubjects(o.bus.prefix),
    from: { new: true },
    logger: o.logger,
    what: "feed fan-out",
    handle: (m) => {
      const e = FeedEvent.safeParse(m.json());
      if (!e.success) return o.logger.warn({ seq: m.seq }, "unreadable feed entry; not sent");
      o.dispatch(e.data, m.seq, outgoing(toEventFrame(e.data)));
    },
  });
}
