import type { NextFunction, Request, Response } from "express";
import type { Logger } from "@mam/runtime/logger.ts";

/** Bodies above this are "large": buffered several times over and handed over through the bus's bucket. */
export const LARGE_BODY_BYTES = 1024 * 1024;

/** Who holds a slot: a key, and its tenant (none for the operator's keys). */
export interface Holder {
  key: string;
  tenant: string | null;
}

/**
 * How many large request bodies may be in flight, in all, per tenant and per key: a gateway
 * holds each several times in memory, and one client must not crowd everyone else out of
 * the bucket that carries them. The tenant cap is what keeps a tenant from taking every slot
 * by minting more keys.
 */
export class LargeBodies {
  private total = 0;
  private readonly byKey = new Map<string, number>();
  private readonly byTenant = new Map<string, number>();

  constructor(
    readonly maxTotal: number,
    readonly maxPerKey: number,
    readonly maxPerTenant: number = maxTotal,
  ) {}

  tryAcquire(h: Holder): boolean {
    if (this.total >= this.maxTotal) return false;
    if ((this.byKey.get(h.key) ?? 0) >= this.maxPerKey) return false;
    if (h.tenant !== null && (this.byTenant.get(h.tenant) ?? 0) >= this.maxPerTenant) return false;
    this.total++;
    bump(this.byKey, h.key, 1);
    if (h.tenant !== null) bump(this.byTenant, h.tenant, 1);
    return true;
  }

  release(h: Holder): void {
    bump(this.byKey, h.key, -1);
    if (h.tenant !== null) bump(this.byTenant, h.tenant, -1);
    this.total = Math.max(0, this.total - 1);
  }

  get inFlight(): number {
    return this.total;
  }
}

function bump(counts: Map<string, number>, id: string, by: 1 | -1): void {
  const n = (counts.get(id) ?? 0) + by;
  if (n <= 0) counts.delete(id);
  else counts.set(id, n);
}

/**
 * Admits a large body only while there is room (else 429 with Retry-After), and frees the
 * room when the response is over, however it ends. A body of unknown length counts as large.
 */
export function admitLargeBodies(limits: LargeBodies, holderOf: (res: Response) => Holder, refuse: (res: Response) => void, logger?: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const declared = req.get("content-length");
    const large = declared !== undefined ? Number(declared) > LARGE_BODY_BYTES : req.get("transfer-encoding") !== undefined;
    if (!large) return next();
    const holder = holderOf(res);
    if (!limits.tryAcquire(holder)) return refuse(res);
    // Says when a slot is taken, which is what a test of the caps waits for (and an operator
    // chasing a 429 wants to see); the key's id is no secret.
    logger?.debug({ requestId: res.locals.requestId, keyId: holder.key, inFlight: limits.inFlight }, "large body admitted");
    res.once("close", () => limits.release(holder));
    next();
  };
}
