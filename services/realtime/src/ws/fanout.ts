import type { Bus } from "@mam/bus/connection.ts";
import { allFeedSubjects, FeedEvent, feedRouteOf } from "@mam/contracts/realtime-feed.ts";
import { toEventFrame } from "@mam/contracts/ws-frames.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import { Follower } from "./follow.ts";
import { outgoing, type Outgoing } from "./registry.ts";
import type { Routed } from "./scope.ts";

/**
 * One ordered consumer per replica on the whole feed, from the moment it starts: each entry
 * is read and rendered once, then offered to the connections that may want it, with its
 * stream sequence (a replay uses it to join the live events without a gap or a repeat). An
 * entry no connection here follows (told by its subject) is neither parsed nor rendered.
 */
export function feedFanout(o: {
  bus: Bus;
  stream: string;
  logger: Logger;
  wants: (r: Routed) => boolean;
  dispatch: (e: FeedEvent, seq: number, out: Outgoing) => void;
}): Follower {
  return new Follower({
    bus: o.bus,
    stream: o.stream,
    filter: allFeedSubjects(o.bus.prefix),
    from: { new: true },
    logger: o.logger,
    what: "feed fan-out",
    handle: (m) => {
      const route = feedRouteOf(o.bus.prefix, m.subject);
      if (route && !o.wants(route)) return;
      const e = FeedEvent.safeParse(m.json());
      if (!e.success) return o.logger.warn({ seq: m.seq }, "unreadable feed entry; not sent");
      o.dispatch(e.data, m.seq, outgoing(toEventFrame(e.data)));
    },
  });
}
