import type { Subscription } from "@nats-io/transport-node";
import type { Bus } from "@mam/bus/connection.ts";
import { call } from "@mam/bus/rpc.ts";
import { AppError } from "@mam/contracts/errors.ts";
import { IDENTITY_CONTEXT, KeyRevokedV1, WorkspaceDeletedV1 } from "@mam/contracts/identity-events.ts";
import { Principal } from "@mam/contracts/keys.ts";
import { RpcContracts } from "@mam/contracts/rpc-contracts.ts";
import { hashKey, KEY_SHAPE } from "@mam/scope/key-hash.ts";
import type { Logger } from "@mam/runtime/logger.ts";
import type { KeyCache } from "./key-cache.ts";

/** Turns a presented key into a principal: cache first, identity on a miss. */
export class Authenticator {
  private readonly subs: Subscription[] = [];

  constructor(
    private readonly bus: Bus,
    private readonly cache: KeyCache,
    private readonly logger: Logger,
    private readonly timeoutMs: number,
  ) {}

  async resolve(rawKey: string | undefined, requestId: string): Promise<Principal> {
    if (!rawKey) throw new AppError("UNAUTHORIZED", "Missing API key: send X-API-Key or Authorization: Bearer");
    if (!KEY_SHAPE.test(rawKey)) throw new AppError("UNAUTHORIZED", "Invalid API key");
    const hash = hashKey(rawKey);
    const cached = this.cache.get(hash);
    if (cached) return cached;
    const reply = await call(this.bus, RpcContracts.identity.keyResolve, { keyHash: hash }, { requestId, timeoutMs: this.timeoutMs });
    if (!reply.ok) throw new AppError(reply.error.code, reply.error.error);
    if (!reply.body.principal) throw new AppError("UNAUTHORIZED", "Invalid API key");
    // Parsed here, not only typed: it is what every later decision about this caller rests on.
    const p = Principal.parse(reply.body.principal);
    if (this.cache.isRevoked(p)) throw new AppError("UNAUTHORIZED", "Invalid API key");
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
