import type { Subscription } from "@nats-io/transport-node";
import type { Bus } from "@mam/bus/connection.ts";
import { call } from "@mam/bus/rpc-client.ts";
import { AppError } from "@mam/contracts/errors.ts";
import { IDENTITY_CONTEXT, KeyRevokedV1, WorkspaceDeletedV1 } from "@mam/contracts/identity-events.ts";
import { Principal } from "@mam/contracts/keys.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import { hashKey } from "@mam/scope/key-hash.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import type { KeyCache } from "./key-cache.ts";
import type { RateDecision } from "./rate-limit.ts";

/**
 * The keys identity can know: generated ones are a prefix and 32 random bytes in base64url
 * (43 characters); the operator may choose its own `sa_` key (SUPER_ADMIN_KEY: 22 to 200
 * characters). Anything else is refused without a lookup, and without counting against the
 * client's address: refusing it costs nothing.
 */
const KEY_SHAPE = /^(?:(?:tk|wk|ak)_[A-Za-z0-9_-]{43}|sa_[A-Za-z0-9_-]{22,200})$/;

/** Keeps one client address from having guessed keys looked up at its own pace. */
export interface LookupGuard {
  /** Before identity is asked about a key this gateway has not seen resolve: takes one from the address's allowance. */
  takeLookup(): Promise<RateDecision>;
  /** The key was known after all, or identity could not tell: the lookup does not count. */
  giveBackLookup(): Promise<void>;
}

/** The address has had too many unknown keys looked up in this window. */
export class LookupRefused extends AppError {
  constructor(readonly rate: RateDecision) {
    super("RATE_LIMITED", "Too many unknown API keys from this address; retry later");
  }
}

/** Turns a presented key into a principal: cache first, identity on a miss. */
export class Authenticator {
  private readonly subs: Subscription[] = [];

  constructor(
    private readonly bus: Bus,
    private readonly cache: KeyCache,
    private readonly logger: Logger,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Without a guard every cache miss is looked up. With one, a client address over its
   * limit of unknown keys is refused ({@link LookupRefused}) before identity is asked,
   * unless the key is cached or resolved here recently: a shared address (a NAT, an office)
   * must not lock out known-good keys because someone behind it guesses.
   */
  async resolve(rawKey: string | undefined, requestId: string, guard?: LookupGuard): Promise<Principal> {
    if (!rawKey) throw new AppError("UNAUTHORIZED", "Missing API key: send X-API-Key or Authorization: Bearer");
    if (!KEY_SHAPE.test(rawKey)) throw new AppError("UNAUTHORIZED", "Invalid API key");
    const hash = hashKey(rawKey);
    const cached = this.cache.get(hash);
    if (cached) return cached;
    const guarded = guard && !this.cache.seen(hash) ? guard : undefined;
    if (guarded) {
      const rate = await guarded.takeLookup();
      if (!rate.allowed) throw new LookupRefused(rate);
    }
    let p: Principal | undefined;
    try {
      const reply = await call(this.bus, RpcContracts.identity.keyResolve, { keyHash: hash }, { requestId, timeoutMs: this.timeoutMs });
      if (!reply.ok) throw new AppError(reply.error.code, reply.error.error);
      // Parsed here, not only typed: it is what every later decision about this caller rests on.
      p = reply.body.principal ? Principal.parse(reply.body.principal) : undefined;
    } catch (err) {
      if (guarded) void guarded.giveBackLookup();
      throw err;
    }
    if (!p || this.cache.isRevoked(p)) {
      // The lookup stays counted against the address; and a key identity no longer knows
      // loses its pass around the address limit.
      this.cache.forget(hash);
      throw new AppError("UNAUTHORIZED", "Invalid API key");
    }
    // Not awaited: a known key need not wait for the books to be put right.
    if (guarded) void guarded.giveBackLookup();
    this.cache.set(hash, p);
    return p;
  }

  /**
   * Every gateway instance hears every revocation (a plain subscription: each instance
   * must see each event, unlike a queue group) and evicts the key. Missed events are only
   * possible while disconnected, so a reconnect empties the cache.
   */
  async watchRevocations(): Promise<void> {
    const on = (type: string, apply: (data: unknown) => void) => {
      const sub = this.bus.nc.subscribe(`${this.bus.prefix}evt.${IDENTITY_CONTEXT}.*.*.${type}`, {
        callback: (err, msg) => {
          if (err) return this.logger.error({ err, type }, "revocation subscription failed");
          try {
            apply((msg.json() as { data: unknown }).data);
          } catch (e) {
            this.logger.warn({ err: e, type }, "unreadable revocation event");
          }
        },
      });
      this.subs.push(sub);
    };
    on("KeyRevoked", (d) => this.cache.revoke(KeyRevokedV1.parse(d).keyId));
    on("WorkspaceDeleted", (d) => this.cache.revokeWorkspace(WorkspaceDeletedV1.parse(d).workspaceId));
    await this.bus.nc.flush();
    void (async () => {
      for await (const s of this.bus.nc.status()) {
        if (s.type === "reconnect") this.cache.clear();
      }
    })();
  }

  stop(): void {
    for (const s of this.subs) s.unsubscribe();
  }
}
