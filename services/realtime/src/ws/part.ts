import type { RpcServer } from "@mam/bus/rpc.ts";
import { feedStreamName } from "@mam/contracts/realtime-feed.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import type { Backbone } from "@mam/service-kit/backbone.ts";
import type { Part } from "@mam/service-kit/service.ts";
import type { RealtimeConfig } from "../config.ts";
import type { RealtimeContext } from "../context.ts";
import type { RealtimeDb } from "../db/schema.ts";
import { Directory } from "./directory.ts";
import { WsDoor } from "./door.ts";
import type { Follower } from "./follow.ts";
import { feedFanout } from "./fanout.ts";
import { ReplayPacer } from "./replay-pacer.ts";
import { replayFeed } from "./resume.ts";
import { Revocations } from "./revocations.ts";

/** The WebSocket part of each realtime context, for its handlers (and tests) to find. */
const parts = new WeakMap<object, WebSocketPart>();
/** Replays (resumes) a replica starts a second, past a burst of as many: each declares a consumer on the feed. */
const REPLAY_STARTS_PER_S = 100;
export const webSocketPartOf = (ctx: object): WebSocketPart | undefined => parts.get(ctx);

/**
 * Realtime's WebSocket side: the directory a subscription is judged by, the revocations
 * every replica hears, the one feed consumer that fans events out, and the door the
 * gateway hands upgrades to. Started in that order (the door opens last), stopped in reverse.
 */
export class WebSocketPart implements Part {
  readonly door: WsDoor;
  private readonly directory: Directory;
  private readonly revocations: Revocations;
  private readonly fanout: Follower;
  private readonly logger: Logger;

  constructor(cfg: RealtimeConfig, ctx: RealtimeContext, b: Backbone<RealtimeDb>) {
    const logger = ctx.logger.child({ part: "ws" });
    this.logger = logger;
    const feed = feedStreamName(ctx.bus.prefix);
    const pacer = new ReplayPacer(REPLAY_STARTS_PER_S, REPLAY_STARTS_PER_S);
    this.directory = new Directory(b, ctx.db);
    this.door = new WsDoor({
      cfg,
      verifier: b.verifier,
      directory: this.directory,
      maxBufferedBytes: cfg.WS_MAX_BUFFERED_BYTES,
      framesPerS: cfg.WS_CLIENT_FRAMES_PER_S,
      directoryWaitMs: cfg.WS_DIRECTORY_WAIT_MS,
      replay: (r) => pacer.run(r.scope.tenantId, () => replayFeed({ bus: ctx.bus, stream: feed, retentionS: cfg.FEED_RETENTION_S, logger }, r)),
      revocations: () => this.revocations,
      logger,
    });
    this.revocations = new Revocations({
      bus: ctx.bus,
      stream: b.stream,
      memoryMs: cfg.WS_REVOKED_MEMORY_S * 1000,
      logger,
      onEnded: (e) => this.door.endedBy(e),
    });
    this.fanout = feedFanout({
      bus: ctx.bus,
      stream: feed,
      logger,
      wants: (r) => this.door.registry.wants(r),
      dispatch: (e, seq, out) => this.door.registry.dispatch(e, seq, out),
    });
    parts.set(ctx, this);
  }

  /** Connections this replica holds (closing ones excluded). */
  get connections(): number {
    return this.door.registry.size;
  }

  async start(): Promise<void> {
    await this.directory.start();
    await this.revocations.start();
    await this.fanout.start();
    await this.door.start();
    this.logger.info({ wsPort: this.door.port, advertised: this.door.route().host, replicaId: this.door.replicaId }, "websocket door listening");
  }

  /** `svc.realtime.ws.route`: the queue group picks one live replica, which names its door. */
  serve(server: RpcServer): void {
    server.servePublic(RpcContracts.realtime.wsRoute, async () => ({ status: 200, body: this.door.route() }));
  }

  async stop(): Promise<void> {
    await this.door.stop();
    await this.fanout.stop();
    await this.revocations.stop();
    await this.directory.stop();
  }
}
